"""Each vendor, as the sandbox reads it from its vendored spec (and from nothing of the client's).

The vendors are the entry points of the ``videojobs.vendors`` group (pyproject.toml), read by
name only: loading one would import the client's adapter. A vendor's spec ships inside its
generated package (``<slug>_client/openapi.json``, written by ``scripts/generate.py``); the
sandbox reads it as a file, without importing the package, and serves every listed vendor
whose spec it finds. From the spec it takes the server path, the
status path, the 200 answer's schema (and so where the state is and which words it has), and
the documented error answers. Where the spec is silent, the sandbox assumes, and says so here:

- ``PHASE_WORDS``: what a state word means, and in which order a vendor's words for one phase
  follow each other (JimmyAI's page lists three words for a queued job but not their order).
- Field roles (``_role``): a field is read by its name: ``progress`` (0-100, or out of a
  ``maximum*`` sibling), ``*url``, ``videoId``, ``*_at``/``*_time`` timestamps, ``error``,
  ``*message``. Anything else takes the spec's example, or is left out when optional.
- ``LINK_LIFETIME``: a link's ``expires_at`` is a day after completion (ezmodel's examples).
- Errors: a vendor whose 200 answer is an envelope with a ``code`` example (JimmyAI) answers
  errors with HTTP 200 and ``code`` = the HTTP status and ``00`` (its page gives no codes);
  a vendor that documents error statuses without bodies (Colossyan) sends none; one that
  documents an error body sends that shape for every error; one that documents nothing
  (Duomi) sends ``{"code", "message"}``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlsplit

import attrs

from ._jobs import Phase, Script, Snapshot

__all__ = ["PHASE_WORDS", "VendorSpec", "installed_vendors", "load"]

SPEC_FILE: Final = "openapi.json"

VENDOR_GROUP: Final = "videojobs.vendors"
"""The entry-point group that lists the vendors (the same as ``videojobs._registry.GROUP``)."""

PHASE_WORDS: Final[Mapping[Phase, tuple[str, ...]]] = {
    "queued": ("submitted", "pending", "queued", "in_queue", "waiting"),
    "running": ("preprocessing", "preprocessing_finished", "processing", "running", "in_progress", "generating"),
    "succeeded": ("done", "completed", "succeeded", "finished", "success"),
    "failed": ("failed", "error"),
    "canceled": ("deleted", "canceled", "cancelled"),
}
"""ASSUMPTION: the sandbox's own vocabulary of state words, in the order a job passes through them."""

FAILURE_FIELDS: Final = frozenset({"error", "error_msg", "fail_reason", "failure_reason"})
"""ASSUMPTION: names of a plain-string field that says why a job failed (as ``message`` does for
Duomi, an ``error`` object for ezmodel): sent only when it failed or was canceled. Sent on every
state, as any other string field is (``"sandbox"``), a running job read as one with an error."""

LINK_LIFETIME: Final = 86400
"""ASSUMPTION: seconds from completion to ``expires_at`` (ezmodel's examples show a day)."""

MAX_PROGRESS: Final = 200
"""ASSUMPTION: the ``maximumProgress`` sent when the spec gives no example (Colossyan's page gives none)."""

OMIT: Final = object()


class SpecError(ValueError):
    """A vendor's spec the sandbox cannot simulate (says what is missing)."""


MAX_SCHEMA_NODES: Final = 100_000
"""ASSUMPTION: the most nodes an answer's schema may grow to with its ``$ref``s written out (the
five vendors' are under 100): a few schemas each naming the next five times made a 4 KB page
take a minute and 600 MB here, two more levels all the memory there was."""


def _deref(doc: dict[str, Any], node: Any) -> Any:
    """``node`` with every ``$ref`` written out, within :data:`MAX_SCHEMA_NODES`. A schema that
    holds itself (a tree's node: valid OpenAPI, which the generator takes) is written out once
    along each path; past that it is ``{}``, any value, which the simulated answers leave out."""
    left = MAX_SCHEMA_NODES

    def out(node: Any, depth: int, within: frozenset[str]) -> Any:
        nonlocal left
        left -= 1
        if left < 0:
            raise SpecError(f"the schema grows past {MAX_SCHEMA_NODES:,} nodes with its $refs written out")
        if depth > 40:
            raise SpecError("$ref nesting too deep")
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                if ref in within:
                    return {}
                target: Any = doc
                for part in ref.removeprefix("#/").split("/"):
                    target = target[part.replace("~1", "/").replace("~0", "~")]
                return out(target, depth + 1, within | {ref})
            return {k: out(v, depth + 1, within) for k, v in node.items()}
        if isinstance(node, list):
            return [out(v, depth + 1, within) for v in node]
        return node

    return out(node, 0, frozenset())


def _json_schema(response: Mapping[str, Any]) -> dict[str, Any] | None:
    content = response.get("content") or {}
    media = content.get("application/json") or next(iter(content.values()), None)
    return None if media is None else media.get("schema")


STATE_FIELDS: Final = ("status", "state")
"""What vendors call a job's state (every page does): a field by one of these names holding state
words is the state, before any other enum of them (a ``moderation_status`` listed first)."""


def _find_state(schema: Any, path: tuple[str, ...] = ()) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """The path and words of the string enum whose words are state words: one on a field named
    as :data:`STATE_FIELDS` if there is one, else the first (depth first)."""
    found = _state_enums(schema, path)
    named = [f for f in found if f[0][-1] in STATE_FIELDS]
    return (named or found)[0] if found else None


def _state_enums(schema: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """Every string enum holding a state word, depth first."""
    if not isinstance(schema, dict) or len(path) > 16:
        return []
    enum = schema.get("enum")
    words = [w for w in enum if isinstance(w, str)] if isinstance(enum, list) else []
    if path and words and any(w in ws for w in words for ws in PHASE_WORDS.values()):
        return [(path, tuple(words))]
    return [
        found for name, sub in (schema.get("properties") or {}).items() for found in _state_enums(sub, (*path, name))
    ]


@attrs.frozen
class VendorSpec:
    """One vendor as the sandbox simulates it."""

    slug: str
    server_path: str  # the path part of the spec's server URL: "/api/v1" for Colossyan
    status_prefix: str  # the status path before the task id: "/video-generation-jobs/"
    body: dict[str, Any] = attrs.field(repr=False)  # the 200 answer's schema, dereferenced
    state_path: tuple[str, ...]
    words: tuple[str, ...]  # the state words, as the spec lists them
    errors: Mapping[int, dict[str, Any] | None] = attrs.field(repr=False)  # documented error bodies
    envelope: tuple[str, str] | None  # (code field, its success value) when the 200 answer is an envelope

    @functools.cached_property
    def phases(self) -> dict[str, Phase]:
        return {w: phase for phase, words in PHASE_WORDS.items() for w in words if w in self.words}

    def word(self, snap: Snapshot, script: Script) -> str:
        """The vendor's word for where a job stands (several words for a phase take turns in order)."""
        phase: Phase = snap.phase
        if phase == "canceled" and not any(p == "canceled" for p in self.phases.values()):
            phase = "failed"  # a vendor with no word for it reports a canceled job as failed
        words = [w for w in PHASE_WORDS[phase] if w in self.words]
        if len(words) == 1:
            return words[0]
        share = snap.elapsed / max(script.queue, 1e-9) if phase == "queued" else snap.progress
        return words[min(len(words) - 1, int(share * len(words)))]

    # --- bodies -------------------------------------------------------------------------------

    def render(
        self,
        task_id: str,
        snap: Snapshot,
        word: str,
        created: float,
        now: float,
        video: bool,
        files: str = "https://videos.sandbox.invalid",
        link_expires: int | None = None,
    ) -> Any:
        """The 200 answer for a job at ``snap`` that the vendor calls ``word``; its video links
        point at ``files`` (the file host), signed until ``link_expires`` (Unix seconds) if given."""
        phase = self.phases.get(word, "running")
        ctx = _Context(self, task_id, snap, phase, word, created, now, video, files, link_expires)
        return ctx.value(self.body, (), required=True)

    def render_error(self, status: int, code: str, message: str) -> tuple[int, bytes]:
        """``(HTTP status, body)`` of an error answer, in the vendor's documented shape."""
        if self.envelope is not None:
            field, _ = self.envelope
            fields = self.body.get("properties", {})
            text = next((k for k in ("msg", "message") if k in fields), "msg")
            return 200, _dump({field: f"{status}00", text: message})
        shape = self.errors.get(status, OMIT) if status in self.errors else next(iter(self.errors.values()), OMIT)
        if shape is None or (shape is OMIT and self.errors and all(v is None for v in self.errors.values())):
            return status, b""  # documented without a body
        if shape is OMIT:
            return status, _dump({"code": code, "message": message})
        assert isinstance(shape, dict)
        return status, _dump(_error_body(shape, code, message))


@attrs.define
class _Context:
    spec: VendorSpec
    task_id: str
    snap: Snapshot
    phase: Phase
    word: str
    created: float
    now: float
    video: bool
    files: str = "https://videos.sandbox.invalid"
    link_expires: int | None = None

    @property
    def expires(self) -> int:
        """When the links expire: a day after completion, or when their signature runs out."""
        return self.link_expires if self.link_expires is not None else self.completed + LINK_LIFETIME

    @property
    def has_video(self) -> bool:
        return self.phase == "succeeded" and self.video

    @property
    def completed(self) -> int:
        return int(self.created + (self.snap.ended_at or self.snap.elapsed))

    def value(self, schema: dict[str, Any], path: tuple[str, ...], *, required: bool) -> Any:
        if path == self.spec.state_path:
            return self.word
        if self.spec.envelope is not None and path == (self.spec.envelope[0],):
            return self.spec.envelope[1]
        kind = schema.get("type")
        if kind == "object" or "properties" in schema:
            return self._object(schema, path, required)
        role = _role(path[-1] if path else "", kind)
        return self._primitive(role, schema, path, required)

    def _object(self, schema: dict[str, Any], path: tuple[str, ...], required: bool) -> Any:
        name = path[-1] if path else ""
        if name == "error" and self.phase != "failed":
            return OMIT
        out: dict[str, Any] = {}
        needed = set(schema.get("required") or ())
        for key, sub in (schema.get("properties") or {}).items():
            if key.startswith(("max", "maximum")) and "progress" in key.lower():
                out[key] = _example(sub, MAX_PROGRESS)
                continue
            value = self.value(sub, (*path, key), required=key in needed)
            if value is not OMIT:
                out[key] = value
        if "progress" in out and any(k.lower().startswith(("max", "maximum")) for k in out):
            top = next(v for k, v in out.items() if k.lower().startswith(("max", "maximum")))
            out["progress"] = round(self.snap.progress * top)
        if not out and not required:
            return OMIT
        return out

    def _primitive(self, role: str, schema: dict[str, Any], path: tuple[str, ...], required: bool) -> Any:
        kind = schema.get("type")
        if role == "id":
            return self.task_id
        if role == "progress":  # of the type the spec gives it: a vendor that documents a string sends one
            percent = round(self.snap.progress * 100) if self.phase != "queued" else 0
            return str(percent) if kind == "string" else percent
        if role == "videos" and kind == "array":
            return [{"url": self._url(n)} for n in range(2)] if self.has_video else []
        if role == "url":
            return self._url(0) if self.has_video and "image" not in path[-1] else (OMIT if not required else "")
        if role == "video_id":
            return _video_id(self.task_id) if self.video and self.phase != "canceled" else OMIT
        if role == "created":
            return int(self.created)
        if role == "updated":
            return int(self.now)
        if role == "completed":
            return self.completed if self.phase == "succeeded" else OMIT
        if role == "expires":
            return self.expires if self.has_video else OMIT
        if role == "message":
            if self.spec.envelope is not None and len(path) == 1:
                return _example(schema, "ok")  # the envelope's own message
            return _failure(self.phase) if self.phase in ("failed", "canceled") else ""
        if role == "failure":  # a plain-string error: said of a job that failed or was canceled only
            if self.phase in ("failed", "canceled"):
                return _failure(self.phase)
            return "" if required else OMIT
        if role == "code" and len(path) > 1 and path[-2] == "error":
            return "content_policy_violation"
        if "enum" in schema:
            return _example(schema, schema["enum"][0])
        # every other field is sent (a spec's "required" may have been relaxed by patch; the
        # vendor's published one is what the answers must satisfy): its example, or a plain value
        defaults: dict[Any, Any] = {"string": "sandbox", "integer": 0, "number": 0.0, "boolean": False}
        default = defaults.get(kind, "sandbox")
        return _example(schema, default)

    def _url(self, n: int) -> str:
        """The n-th video's link: ``<task>.mp4``, then ``<task>/<n>.mp4`` (``<task>-<n>.mp4`` was
        also the first video of a job named ``<task>-<n>``: which one a link meant was a guess)."""
        task = quote(self.task_id, safe="")
        name = f"{task}/{n}" if n else task
        signed = f"?exp={self.expires}" if self.link_expires is not None else ""
        return f"{self.files}/{self.spec.slug}/{name}.mp4{signed}"


def _role(name: str, kind: Any) -> str:
    """ASSUMPTION: what a field holds, from its name (see the module docstring)."""
    lower = name.lower()
    if lower in ("id", "task_id", "taskid", "job_id"):
        return "id"
    if lower == "progress":
        return "progress"
    if lower == "videos":
        return "videos"
    if lower.endswith("url"):
        return "url"
    if lower in ("videoid", "video_id"):
        return "video_id"
    if kind == "integer" and (lower.endswith(("_at", "_time")) or lower in ("created", "updated")):
        for prefix, role in (
            ("creat", "created"),
            ("updat", "updated"),
            ("complet", "completed"),
            ("expir", "expires"),
        ):
            if lower.startswith(prefix):
                return role
    if lower in ("message", "error_message", "msg"):
        return "message"
    if kind == "string" and lower in FAILURE_FIELDS:
        return "failure"
    if lower == "code":
        return "code"
    return "other"


def _example(schema: dict[str, Any], default: Any) -> Any:
    return schema.get("example", default)


def _error_body(shape: dict[str, Any], code: str, message: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, sub in (shape.get("properties") or {}).items():
        if sub.get("type") == "object" or "properties" in sub:
            out[key] = _error_body(sub, code, message)
        elif key.lower() in ("message", "msg", "detail"):
            out[key] = message
        elif key.lower() in ("code", "type"):
            out[key] = code
        elif "example" in sub:
            out[key] = sub["example"]
        elif key in (shape.get("required") or ()):
            out[key] = "1705334400123" if sub.get("type") == "string" else 0
    return out


def _failure(phase: str) -> str:
    return "content moderation rejected the prompt" if phase == "failed" else "the job was canceled"


def _video_id(task_id: str) -> str:
    return "video-" + hashlib.blake2b(task_id.encode(), digest_size=6).hexdigest()


def _dump(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


# --- finding and reading the specs ------------------------------------------------------------------


def spec_file(slug: str) -> Path | None:
    """``<slug>_client/openapi.json``, found without importing the package."""
    found = importlib.util.find_spec(f"{slug}_client")
    if found is None or not found.submodule_search_locations:
        return None
    path = Path(next(iter(found.submodule_search_locations))) / SPEC_FILE
    return path if path.is_file() else None


@functools.cache
def installed_vendors() -> tuple[str, ...]:
    """Every vendor of the ``videojobs.vendors`` entry points whose spec is installed, sorted
    (read once a process: the installed distributions do not change under it)."""
    from importlib.metadata import entry_points

    slugs = {point.name for point in entry_points(group=VENDOR_GROUP)}
    return tuple(sorted(slug for slug in slugs if spec_file(slug) is not None))


@functools.cache
def load(slug: str) -> VendorSpec:
    """The vendor as its spec describes it."""
    path = spec_file(slug)
    if path is None:
        raise SpecError(f"no spec for vendor {slug!r}: {slug}_client/{SPEC_FILE} is not installed")
    return read(slug, json.loads(path.read_text(encoding="utf-8")))


def _status_operation(slug: str, doc: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The status GET's path, operation and 200 answer's schema (dereferenced)."""
    gets = [(p, item["get"]) for p, item in doc["paths"].items() if "get" in item and "{" in p]
    if len(gets) != 1:
        raise SpecError(f"{slug}: expected one GET path with a task id, found {len(gets)}")
    path_template, operation = gets[0]
    return path_template, operation, _deref(doc, _json_schema(operation["responses"]["200"]) or {})


def _state_of(slug: str, body: dict[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    found = _find_state(body)
    if found is None:
        raise SpecError(f"{slug}: no string enum of state words in the 200 answer (add an enum by patch)")
    return found


def state_enum(slug: str, doc: dict[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Where the status GET's 200 answer holds the job's state, and its words, as the sandbox
    finds them (:func:`_find_state`: a string enum holding a state word, on a field named
    ``status``/``state`` first, else whatever the field is called): ``scripts/update_spec.py``
    reads a new document's status here too."""
    return _state_of(slug, _status_operation(slug, doc)[2])


def read(slug: str, doc: dict[str, Any]) -> VendorSpec:
    """The vendor as the document ``doc`` describes it (``scripts/update_spec.py`` checks a new one)."""
    server_path = urlsplit(doc["servers"][0]["url"]).path.rstrip("/")
    path_template, operation, body = _status_operation(slug, doc)
    responses = operation["responses"]
    state_path, words = _state_of(slug, body)
    unknown = [w for w in words if not any(w in ws for ws in PHASE_WORDS.values())]
    if unknown:
        raise SpecError(f"{slug}: state words {unknown} have no phase in the sandbox's PHASE_WORDS")
    errors: dict[int, dict[str, Any] | None] = {}
    for status, response in responses.items():
        if status.isdigit() and int(status) >= 400:
            schema = _json_schema(response)
            errors[int(status)] = None if schema is None else _deref(doc, schema)
    code = (body.get("properties") or {}).get("code") or {}
    envelope = ("code", str(code["example"])) if "example" in code and state_path[0] != "code" else None
    return VendorSpec(
        slug=slug,
        server_path=server_path,
        status_prefix=path_template[: path_template.index("{")],
        body=body,
        state_path=state_path,
        words=words,
        errors=errors,
        envelope=envelope,
    )
