"""The vendored specs: extraction from a vendor's page, patches, validation, summaries.

Everything here is pure file-in, data-out so that ``extract_spec.py``,
``generate.py``, ``update_spec.py`` and the tests share one implementation.

Layout of one vendor (``specs/<slug>/``)::

    source.md        the vendor's page, as published
    openapi.yaml     the OpenAPI block of that page, verbatim (or .json)
    patches.json     RFC 6902 operations the generator needs, explained in patches.md
    config.yaml      openapi-python-client config (package name, class names)
    handwritten      present when the vendor publishes no OpenAPI (ezmodel)
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import tempfile
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import jsonpatch
import yaml

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"

_FENCE = re.compile(r"^(?P<fence>`{3,})(?P<info>[^`\n]*)$")


class SpecError(Exception):
    """A vendor's page or spec cannot be turned into a generator input."""

    def __init__(self, vendor: str, message: str) -> None:
        super().__init__(f"{vendor}: {message}")
        self.vendor = vendor


@dataclass(frozen=True)
class Block:
    language: str
    text: str


def vendors() -> list[str]:
    """Slugs of every vendored spec (a folder with a config.yaml), sorted."""
    return sorted(p.parent.name for p in SPECS.glob("*/config.yaml"))


_SLUG = re.compile(r"[a-z][a-z0-9_]*")
"""A vendor slug: a lower-case identifier (the registry's rule), never a path."""


def vendor_dir(vendor: str, root: Path = SPECS) -> Path:
    """``specs/<vendor>/`` (or ``<root>/<vendor>/``: a spec folder kept elsewhere, as in tests)."""
    if not _SLUG.fullmatch(vendor):
        raise SpecError(vendor, "a vendor slug is a lower-case identifier (a folder name under specs/), not a path")
    path = root / vendor
    if not (path / "config.yaml").is_file():
        raise SpecError(vendor, f"unknown vendor (no {path}/config.yaml); known: {', '.join(vendors())}")
    return path


def write_file(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all (a temp file beside it, then ``os.replace``): a stop
    midway leaves the old file, and a symbolic link there is replaced, never written through."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        try:  # the file's own mode, not mkstemp's 0600 (unreadable to another user, a CI stage)
            mode = stat.S_IMODE(os.lstat(path).st_mode) if not path.is_symlink() else None
        except FileNotFoundError:
            mode = None
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def is_handwritten(vendor: str, root: Path = SPECS) -> bool:
    """True for a vendor whose page has no OpenAPI block (its spec is written by hand)."""
    return (vendor_dir(vendor, root) / "handwritten").is_file()


def spec_path(vendor: str, root: Path = SPECS) -> Path:
    folder = vendor_dir(vendor, root)
    for name in ("openapi.yaml", "openapi.json"):
        if (folder / name).is_file():
            return folder / name
    raise SpecError(vendor, f"no openapi.yaml or openapi.json in {folder}")


def fenced_blocks(page: str) -> Iterator[Block]:
    """Every fenced code block of a Markdown page, with its info string's first word."""
    lines = page.splitlines(keepends=True)
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i].rstrip("\r\n"))
        if not m:
            i += 1
            continue
        fence, info = m["fence"], m["info"].strip()
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].rstrip("\r\n") != fence:
            body.append(lines[i])
            i += 1
        i += 1  # the closing fence (or the end of the page)
        yield Block(language=(info.split() or [""])[0].lower(), text="".join(body))


def extract(vendor: str, page: str) -> tuple[str, str]:
    """The page's one OpenAPI block, verbatim: ``(extension, text)``.

    Raises SpecError when the page holds no OpenAPI block or more than one.
    """
    found = [b for b in fenced_blocks(page) if _looks_like_openapi(b)]
    if not found:
        raise SpecError(
            vendor, "the page holds no OpenAPI block (a fenced ```yaml or ```json block starting with 'openapi')"
        )
    if len(found) > 1:
        raise SpecError(vendor, f"the page holds {len(found)} OpenAPI blocks; expected one")
    block = found[0]
    ext = "json" if block.text.lstrip().startswith("{") else "yaml"
    text = block.text if block.text.endswith("\n") else block.text + "\n"
    return ext, text


def _looks_like_openapi(block: Block) -> bool:
    """A block whose document starts with ``openapi`` (after blank lines and YAML comments: a
    ``# Vozo API v1`` line first was read as no OpenAPI block at all)."""
    lines = block.text.splitlines()
    while lines and (not lines[0].strip() or lines[0].lstrip().startswith("#")):
        lines.pop(0)
    head = "\n".join(lines).lstrip()[:200]
    return head.startswith("openapi:") or bool(re.match(r'\{\s*"openapi"\s*:', head))


class _PlainLoader(yaml.SafeLoader):
    """YAML's safe loader without aliases (``*name``): a page's document is data, and a few
    nested aliases expand without bound when the document is walked (a 2.6 KB page took 5.7 GB
    before it was stopped). No vendor's document uses one."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(None, None, "a YAML alias (*name) is not taken", mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        """A key twice in one mapping is refused: YAML's loader kept the last one, and a status
        value listed under the first ``enum:`` was dropped without a word."""
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = key_node.value
            if not isinstance(key, str):  # a complex key (? [a, b]): YAML's own checks refuse it
                continue
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is given twice in one mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def _timestamp_as_text(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))


# An unquoted date (``example: 2024-01-01``) is its text, as in the JSON every tool reads the
# document as: YAML's loader made it a date, which no JSON writer takes (update-spec stopped on
# a vendor's new example with a TypeError, and rolled back).
_PlainLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``'s objects, a key twice refused (as the YAML loader refuses it)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the key {key!r} is given twice in one object")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259 has no such number)")


def parse(vendor: str, text: str, ext: str) -> dict[str, Any]:
    try:
        doc = (
            json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
            if ext == "json"
            else yaml.load(text, Loader=_PlainLoader)
        )
        if not isinstance(doc, dict):
            raise SpecError(vendor, f"openapi.{ext} is not a mapping")
        return _as_json(doc, "")
    except _NotJson as exc:
        raise SpecError(vendor, f"openapi.{ext} holds what JSON cannot: {exc}") from exc
    except (ValueError, RecursionError, yaml.YAMLError) as exc:
        raise SpecError(vendor, f"openapi.{ext} does not parse: {exc}") from exc


class _NotJson(Exception):
    """A document's value or key that JSON has no form for (said with its place)."""


def _as_json(node: Any, where: str) -> Any:
    """The document as JSON has it, as every tool reads it after us (the generator, the validator,
    the wheel's ``openapi.json``): mapping keys as strings, an unquoted ``200:`` response code as
    ``"200"``; refused, with its place, what JSON cannot hold: YAML 1.1's other typed keys (an
    unquoted ``on:`` or ``yes:`` is true, ``~:`` null, ``1.5:`` a float: a field renamed without a
    word; OpenAPI 3 reads YAML 1.2, where they are text), two keys that are one as text (``200``
    and ``'200'``), ``!!binary`` and ``!!set`` values, and NaN or an infinity (``.nan``, ``.inf``:
    ``NaN`` in the shipped ``openapi.json``, which no JSON reader takes)."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                raise _NotJson(f"the key {key!r} at {where or '/'} is not text (quote it: YAML 1.1 typed it)")
            text = str(key)
            if text in out:
                raise _NotJson(f"the key {text!r} is given twice at {where or '/'} (once quoted, once not)")
            out[text] = _as_json(value, f"{where}/{text}")
        return out
    if isinstance(node, list):
        return [_as_json(value, f"{where}/{i}") for i, value in enumerate(node)]
    if isinstance(node, float) and not math.isfinite(node):
        raise _NotJson(f"the number at {where or '/'} is {node!r}, which JSON has no form for")
    if node is None or isinstance(node, (str, int, float)):
        return node
    raise _NotJson(f"the value at {where or '/'} is a {type(node).__name__} (a YAML tag JSON has no form for)")


def load_published(vendor: str, root: Path = SPECS) -> dict[str, Any]:
    path = spec_path(vendor, root)
    return parse(vendor, path.read_text(encoding="utf-8"), path.suffix.lstrip("."))


def load_patches(vendor: str, root: Path = SPECS) -> list[dict[str, Any]]:
    path = vendor_dir(vendor, root) / "patches.json"
    if not path.is_file():
        return []
    ops = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(ops, list):
        raise SpecError(vendor, "patches.json must be a JSON array of RFC 6902 operations")
    return ops


def apply_patches(vendor: str, doc: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """Apply the operations one by one, so a failure names the operation that no longer applies."""
    for index, op in enumerate(ops):
        try:
            doc = jsonpatch.JsonPatch([op]).apply(doc)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            raise SpecError(
                vendor,
                f"patch operation #{index} ({op.get('op')} {op.get('path')}) no longer applies: {_short(str(exc))}. "
                f"The vendor's document changed: review specs/{vendor}/patches.json and patches.md.",
            ) from exc
    return doc


def load_patched(vendor: str, root: Path = SPECS) -> dict[str, Any]:
    return apply_patches(vendor, load_published(vendor, root), load_patches(vendor, root))


def validate(vendor: str, doc: dict[str, Any]) -> None:
    """Validate an OpenAPI 3.0 or 3.1 document; SpecError with the validator's reason."""
    from openapi_spec_validator import validate as _validate
    from openapi_spec_validator.validation.exceptions import OpenAPIValidationError
    from referencing.exceptions import Unresolvable  # the validator's $ref resolver (jsonschema's)

    check_refs(vendor, doc)  # before the validator, which follows every $ref it is given
    try:
        _validate(doc)
    except OpenAPIValidationError as exc:
        # the deepest reason, where it is, and cut short: a schema's message may quote the whole
        # node it refused (a review's one typo, `type: integr`, printed 1,271 characters)
        leaves, pending = [], [exc]
        while pending and len(leaves) < 10_000:  # each branch's reasons; the deepest says where the typo is
            error = pending.pop()
            pending.extend(error.context or ())
            leaves += [] if error.context else [error]
        chosen = max(leaves, key=lambda e: (len(e.absolute_path), e.validator == "enum"), default=exc)
        where = getattr(chosen, "json_path", "") or "$"
        raise SpecError(
            vendor, f"the patched document is not valid OpenAPI: at {where}: {_short(chosen.message, 200)}"
        ) from exc
    except Unresolvable as exc:  # a $ref to nowhere (its message quotes the whole document)
        ref = getattr(exc, "ref", "?")
        raise SpecError(vendor, f"the patched document could not be validated: $ref {ref!r} points at nothing") from exc
    except (LookupError, TypeError, ValueError, RecursionError) as exc:
        reason = _short(f"{type(exc).__name__}: {exc}")
        raise SpecError(vendor, f"the patched document could not be validated: {reason}") from exc
    check_servers(vendor, doc)


def check_required(vendor: str, doc: dict[str, Any]) -> None:
    """The status answer requires nothing but the job's state (and what holds it): the generated
    model's ``from_dict`` refuses an answer without a required field, so a required ``task_id``
    missing from an answer cost the job's state, which was there (degrade, don't drop: the overlay
    reads what it can and names the rest in ``problems``). A vendor whose spec requires more
    keeps ``required`` to the state with a patch (Duomi's operations 9-11: Apifox marks every field
    required). A document whose state the sandbox cannot find is judged elsewhere (update-spec)."""
    from videojobs.sandbox import _spec

    try:
        where = _spec.state_enum(vendor, doc)[0]
    except (_spec.SpecError, LookupError, TypeError, ValueError, AttributeError, RecursionError):
        return
    state = ".".join(where)
    holds = {".".join(where[: i + 1]) for i in range(len(where))}  # the state and what holds it
    summary = summarize(doc)
    more: list[str] = []
    for operation in sorted(op for op in summary.operations if op.startswith("GET ")):
        prefix = f"{operation} 200."
        if prefix + state not in summary.fields:
            continue
        required = {f[len(prefix) :] for f in summary.required if f.startswith(prefix)}
        for name in sorted(required - holds):
            parts = name.split(".")
            # only what every answer must carry: within an optional object or a list's items, a
            # missing field costs that object or item only
            if "[]" not in name and all(".".join(parts[: i + 1]) in required | holds for i in range(len(parts) - 1)):
                more.append(name)
    if more:
        raise SpecError(
            vendor,
            f"the status answer's schema requires {', '.join(more)} besides the job's state ({state}): an answer "
            "without one could not be read at all, its state lost with it. Keep `required` to the state with a "
            f"patch in specs/{vendor}/patches.json, explained in patches.md (as specs/duomi/patches.md's 9-11).",
        )


BASE_URL_SCHEME: Final = "https"
"""The only scheme a vendor's default base URL may have: the overlay takes it from the document's
first server (``VendorAdapter.spec_server``) and sends the API key to it as a bearer header, so a
page that moved it to ``http://`` would have the key sent in plaintext."""


def check_servers(vendor: str, doc: dict[str, Any]) -> None:
    """The first server, the overlay's default base URL: an absolute ``https://`` URL."""
    servers = doc.get("servers")
    first = servers[0] if isinstance(servers, list) and servers else None
    if not isinstance(first, dict) or not isinstance(first.get("url"), str):
        raise SpecError(
            vendor,
            "the document names no server (servers: [{url: https://...}]): "
            "the overlay takes the vendor's base URL from the first one",
        )
    url = first["url"]
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        host = None
    if host is None or parts.scheme != BASE_URL_SCHEME or "{" in url or parts.username or parts.password:
        raise SpecError(
            vendor,
            f"the first server {_short(url, 200)!r} is not an absolute {BASE_URL_SCHEME}:// URL: it is the "
            "overlay's default base URL, where the API key is sent (a server variable or a user name is not taken)",
        )


REF_KEYWORDS: Final = ("$ref", "$dynamicRef", "$recursiveRef")
"""JSON Schema's and OpenAPI's references (the last two: JSON Schema 2020-12 and 2019-09, in
OpenAPI 3.1). The validator (jsonschema's referencing) and the generator follow any of them,
a URL or a ``file:`` path as readily as a pointer into the document."""
LOCAL_REF: Final = "#/"


def check_refs(vendor: str, doc: dict[str, Any]) -> None:
    """Every reference points into the document itself (``#/...``): a vendor's page named a URL
    (CI fetched it, stalling 11 s on one that did not answer) or a ``file:`` path (the validator
    read a local file). No vendor's document has any other."""
    stack: list[tuple[str, Any]] = [("", doc)]
    while stack:
        where, node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key in REF_KEYWORDS and isinstance(value, str) and not value.startswith(LOCAL_REF):
                    raise SpecError(
                        vendor,
                        f"the document's {key} {_short(value, 200)!r} (at {_short(where or '/', 200)}) does not point "
                        f"into the document: only {LOCAL_REF}... references are taken (a page must not make "
                        "the validator or the generator fetch a URL or read a file)",
                    )
                stack.append((f"{where}/{str(key).replace('~', '~0').replace('/', '~1')}", value))
        elif isinstance(node, list):
            stack.extend((f"{where}/{index}", value) for index, value in enumerate(node))


def _short(text: str, limit: int = 300) -> str:
    """A third-party message that may quote a whole document, cut to ``limit`` characters."""
    return text if len(text) <= limit else text[:limit] + f"... ({len(text) - limit} more characters)"


# --- what changed between two versions of a vendor's API ---------------------------------


MAX_SCHEMA_NODES: Final = 300_000
"""Schema nodes a document's answers may expand to when walked: every vendor's is under 200 (an
API of 800 operations answering one 380-node schema fits), and a tree of ``$ref``s (five
properties each naming the next schema, sixteen deep) expands to 5^16 without a cycle: past
this, the document is refused rather than walked for hours."""


@dataclass
class ApiSummary:
    operations: set[str] = field(default_factory=set)
    fields: set[str] = field(default_factory=set)
    enums: dict[str, set[str]] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)  # a field's type(s): "a or b" when branches differ
    required: set[str] = field(default_factory=set)  # the fields a schema lists as required
    servers: list[str] = field(default_factory=list)  # in order: the first is the default base URL
    security: dict[str, str] = field(default_factory=dict)  # a scheme's name: what it is, as JSON
    requirement: str = "null"  # the document's own ``security`` (which schemes every call sends), as JSON
    limit: int = MAX_SCHEMA_NODES  # schema nodes the answers may expand to
    budget: int = MAX_SCHEMA_NODES  # schema nodes left to walk


def summarize(doc: dict[str, Any], max_nodes: int = MAX_SCHEMA_NODES) -> ApiSummary:
    """Operations, response fields and enum values of a document. A field is named by its
    operation, its answer's code and its dotted path (``GET /v1/x/{id} 200.data.status``): two
    operations, or two branches of a ``oneOf``, add to one name rather than replace it. A
    document whose answers expand past ``max_nodes`` schema nodes is a ValueError."""
    out = ApiSummary(limit=max_nodes, budget=max_nodes)
    for path, item in (doc.get("paths") or {}).items():
        for method, op in (item or {}).items():
            if not isinstance(op, dict) or method.startswith("x-") or method == "parameters":
                continue
            operation = f"{method.upper()} {path}"
            out.operations.add(operation)
            body = resolve_ref(doc, op.get("requestBody")) or {}
            for media in (body.get("content") or {}).values() if isinstance(body, dict) else ():
                _walk(doc, (media or {}).get("schema"), f"{operation} request", out, depth=0)
            for code, response in (op.get("responses") or {}).items():
                for media in ((resolve_ref(doc, response) or {}).get("content") or {}).values():
                    _walk(doc, (media or {}).get("schema"), f"{operation} {code}", out, depth=0)
    servers = doc.get("servers")
    for server in servers if isinstance(servers, list) else ():
        out.servers.append(str(server.get("url")) if isinstance(server, dict) else repr(server))
    components = doc.get("components")
    schemes = components.get("securitySchemes") if isinstance(components, dict) else None
    for name, scheme in (schemes or {}).items() if isinstance(schemes, dict) else ():
        scheme = resolve_ref(doc, scheme)
        if isinstance(scheme, dict):  # what it is, not how it is described
            scheme = {k: v for k, v in scheme.items() if k != "description" and not k.startswith("x-")}
        out.security[name] = json.dumps(scheme, sort_keys=True, ensure_ascii=False)
    out.requirement = json.dumps(doc.get("security"), sort_keys=True, ensure_ascii=False)
    return out


_TYPE_WORDS: dict[str, str] = {}
"""Each type's words once (``string``, ``integer | null``): the summary's values share them."""


def _type_of(doc: dict[str, Any], schema: Any) -> str:
    """A field's type as a person reads it: ``string``, ``string (date-time)``, ``integer | null``,
    ``object``, ``array of string``; ``any`` when the schema does not say."""
    schema = resolve_ref(doc, schema)
    if not isinstance(schema, dict):
        return "any"
    kind = schema.get("type")
    if isinstance(kind, list):
        text = " | ".join(map(str, kind))
    elif isinstance(kind, str):
        text = kind
    elif any(key in schema for key in ("oneOf", "anyOf", "allOf")):
        text = next(key for key in ("oneOf", "anyOf", "allOf") if key in schema)
    else:
        text = "any"
    if kind == "array":
        text += f" of {_type_of(doc, schema.get('items'))}" if "items" in schema else ""
    if isinstance(schema.get("format"), str):
        text += f" ({schema['format']})"
    if schema.get("nullable") is True:
        text += " | null"
    return text


def resolve_ref(doc: dict[str, Any], schema: Any) -> Any:
    """Follow local ``$ref``s (``#/components/...``) until a schema that is not a reference."""
    seen = 0
    while isinstance(schema, dict) and "$ref" in schema and seen < 32:
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            return {}
        node: Any = doc
        for part in ref[2:].split("/"):
            node = node.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(node, dict) else {}
        schema, seen = node, seen + 1
    return schema


def _walk(
    doc: dict[str, Any], schema: Any, prefix: str, out: ApiSummary, depth: int, refs: frozenset[str] = frozenset()
) -> None:
    """``refs``: the ``$ref``s followed on the way here; a schema that names one again (a tree of
    jobs, a job's parent) is walked once, not again to the depth limit at every branch."""
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
        if schema["$ref"] in refs:
            return
        refs = refs | {schema["$ref"]}
        schema = resolve_ref(doc, {"$ref": schema["$ref"]}) if len(refs) < 32 else None
    if not isinstance(schema, dict) or depth > 16:
        return
    out.budget -= 1
    if out.budget < 0:
        raise ValueError(f"its answers' schemas expand past {out.limit:,} nodes (a tree of $refs)")
    values = schema["enum"] if isinstance(schema.get("enum"), list) else [schema["const"]] if "const" in schema else []
    if values:  # an enum, or OpenAPI 3.1's const (a oneOf of consts is an enum too); null is no value
        out.enums.setdefault(prefix, set()).update(str(v) for v in values if v is not None)
    required = schema.get("required")
    named = {name for name in required if isinstance(name, str)} if isinstance(required, list) else set()
    for name, sub in (schema.get("properties") or {}).items():
        # one string per field, shared by every table (a tree of $refs has 300,000 of them), and
        # one per type word: a set of types per field made the walk's memory 412 MiB from 187
        dotted = f"{prefix}.{name}"
        out.fields.add(dotted)
        if name in named:
            out.required.add(dotted)
            named.discard(name)
        kind = _TYPE_WORDS.setdefault(text := _type_of(doc, sub), text)
        was = out.types.get(dotted)
        if was is None:
            out.types[dotted] = kind
        elif kind not in was.split(" or "):
            out.types[dotted] = " or ".join(sorted({*was.split(" or "), kind}))
        _walk(doc, sub, dotted, out, depth + 1, refs)
    # required beside the properties that name them: an allOf branch of ``required: [status]``
    # over a $ref'd base, OpenAPI's usual way to make a field required
    out.required.update(f"{prefix}.{name}" for name in named)
    if "items" in schema:
        _walk(doc, schema["items"], f"{prefix}[]", out, depth + 1, refs)
    for key in ("allOf", "oneOf", "anyOf"):
        for sub in schema.get(key) or []:
            _walk(doc, sub, prefix, out, depth + 1, refs)


def describe_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Human lines: servers (the first is the overlay's default base URL), security schemes,
    operations, fields, their types, required fields and enum values added, removed or changed.
    Empty when none."""
    a, b = summarize(before), summarize(after)
    lines: list[str] = []
    if a.servers[:1] != b.servers[:1]:  # where the overlay sends the API key by default
        was, now = (s.servers[0] if s.servers else "(none)" for s in (a, b))
        lines.append(f"~ first server (the default base URL) {was} -> {now}")
    lines += [f"+ server {x}" for x in b.servers if x not in a.servers]
    lines += [f"- server {x}" for x in a.servers if x not in b.servers]
    for name in sorted(set(a.security) | set(b.security)):
        old_scheme, new_scheme = a.security.get(name), b.security.get(name)
        if old_scheme is None:
            lines.append(f"+ security scheme {name} {new_scheme}")
        elif new_scheme is None:
            lines.append(f"- security scheme {name} {old_scheme}")
        elif old_scheme != new_scheme:
            lines.append(f"~ security scheme {name} {old_scheme} -> {new_scheme}")
    if a.requirement != b.requirement:
        lines.append(f"~ security requirement {a.requirement} -> {b.requirement}")
    for label, old, new in (("operation", a.operations, b.operations), ("field", a.fields, b.fields)):
        lines += [f"+ {label} {x}" for x in sorted(new - old)]
        lines += [f"- {label} {x}" for x in sorted(old - new)]
    for where in sorted(set(a.types) & set(b.types)):
        if a.types[where] != b.types[where]:
            lines.append(f"~ field {where} type {a.types[where]} -> {b.types[where]}")
    kept = a.fields & b.fields  # a field added or removed is named above, required or not
    lines += [f"+ required field {x}" for x in sorted((b.required - a.required) & kept)]
    lines += [f"- required field {x} (optional now)" for x in sorted((a.required - b.required) & kept)]
    for where in sorted(set(a.enums) | set(b.enums)):
        old_values, new_values = a.enums.get(where, set()), b.enums.get(where, set())
        lines += [f"+ enum value {where} = {v!r}" for v in sorted(new_values - old_values)]
        lines += [f"- enum value {where} = {v!r}" for v in sorted(old_values - new_values)]
    return lines


MAX_EDITS_SHOWN: Final = 30
"""Edits listed by :func:`document_edits` at most (a rewritten document lists its first ones)."""


def document_edits(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Every edit from one document to the other, as JSON Patch operations (jsonpatch's own diff),
    a line each, its pointer readable and the start of the value it adds or puts in: what
    :func:`describe_changes` does not read too, a description, an example, a parameter, a
    pattern. Empty when the documents are equal."""
    ops = jsonpatch.make_patch(before, after).patch
    lines = []
    for op in ops[:MAX_EDITS_SHOWN]:
        where = f"{_shown(op['from'])} -> {_shown(op['path'])}" if "from" in op else _shown(op["path"])
        value = ""
        if "value" in op:  # what was added or put in: its start
            text = json.dumps(op["value"], ensure_ascii=False, sort_keys=True, default=str)
            value = " = " + (text if len(text) <= MAX_VALUE_SHOWN else text[: MAX_VALUE_SHOWN - 3] + "...")
        lines.append(f"{op['op']} {where}{value}")
    if len(ops) > MAX_EDITS_SHOWN:
        lines.append(f"... and {len(ops) - MAX_EDITS_SHOWN} more")
    return lines


MAX_VALUE_SHOWN: Final = 100
"""Characters of an added or replaced value shown in an edit's line."""


def _shown(pointer: str) -> str:
    """A JSON Pointer as a person reads it: ``/paths/~1v1~1x/get`` as ``/paths/"/v1/x"/get``."""
    if not pointer:
        return "/ (the whole document)"
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    return "".join("/" + (json.dumps(p, ensure_ascii=False) if "/" in p else p) for p in parts)


STATUS_FIELDS = ("status", "state")


_CODE_WORD: Final = re.compile(r"`([^`\n]{1,64})`")
_TABLE_RULE: Final = re.compile(r"^\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?$")  # a GFM table's delimiter row


@dataclass(frozen=True)
class StateTable:
    """A page's table of a job's states (JimmyAI's 任务状态说明: its document gives the status as
    a bare string, the values in this table, and a patch writes them into an enum): its header
    row, and the backquoted words of its first column (before any "(": a note is not a state)."""

    header: str
    words: frozenset[str]


def _is_rule(line: str) -> bool:
    """A GFM table's delimiter row, with a pipe: a bare ``---`` under a line is a heading's or a rule."""
    return "|" in line and _TABLE_RULE.match(line) is not None


def _page_tables(page: str) -> list[StateTable]:
    """Every GFM table of ``page`` outside its code blocks (outer pipes or not)."""
    lines = [line.strip() for line in page.splitlines()]
    tables: list[StateTable] = []
    fenced, at = False, 0
    while at < len(lines):
        text = lines[at]
        if text.startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced and "|" in text and at + 1 < len(lines) and _is_rule(lines[at + 1]):
            words: set[str] = set()
            at += 2
            while at < len(lines) and "|" in lines[at] and not lines[at].startswith(("```", "~~~")):
                first = lines[at].strip("|").split("|", 1)[0].split("(", 1)[0]
                words.update(word.strip() for word in _CODE_WORD.findall(first))
                at += 1
            tables.append(StateTable(" ".join(text.strip("|").split()), frozenset(words)))
            continue
        at += 1
    return tables


def page_state_table(page: str, words: Collection[str], like: StateTable | None = None) -> StateTable | None:
    """The page's table of states: the one headed as ``like`` (the last page's table, found
    whatever it now lists; of several so headed, as a page's tables of error codes may be, the one
    sharing the most of its states), else the one listing the most of ``words`` (the document's
    states), at least half of them; None when there is none (the pages whose document has the enum)."""
    tables = _page_tables(page)
    if like is not None:
        headed = [table for table in tables if table.header == like.header]
        if headed:
            return max(headed, key=lambda table: len(table.words & like.words))
    known = set(words)
    best = max(tables, key=lambda table: len(table.words & known), default=None)
    if best is None or 2 * len(best.words & known) < max(2, len(known)):
        return None
    return best


def status_enums(doc: dict[str, Any]) -> dict[str, set[str]]:
    """Where a job's status is documented, and its values: enums on a ``status``/``state`` field
    of a success answer (2xx, 2XX) or of the ``default`` one, in any operation."""
    found: dict[str, set[str]] = {}
    for where, enum in summarize(doc).enums.items():
        code, _, dotted = where.rsplit(" ", 1)[-1].partition(".")
        if (code.startswith("2") or code == "default") and dotted.rsplit(".", 1)[-1] in STATUS_FIELDS:
            found[where] = enum
    return found


def status_values(doc: dict[str, Any]) -> set[str]:
    """Every documented value of a job's status (see :func:`status_enums`)."""
    return set().union(*status_enums(doc).values())
