"""The vendored specs: verbatim extraction, patches, validation, change summaries."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts import specs
from tests.cases import VENDORS

EXTRACTED = [v for v in VENDORS if not specs.is_handwritten(v)]


def test_every_vendor_is_vendored() -> None:
    """The registry's vendors (pyproject.toml's entry points) are the spec folders, each generated."""
    assert specs.vendors() == VENDORS
    assert sorted(p.name for p in (specs.ROOT / "generated").glob("*_client")) == [f"{v}_client" for v in VENDORS]


@pytest.mark.parametrize("vendor", VENDORS)
def test_vendor_folder_is_complete(vendor: str) -> None:
    folder = specs.SPECS / vendor
    for name in ("source.md", "patches.json", "patches.md", "config.yaml"):
        assert (folder / name).is_file(), f"specs/{vendor}/{name} is missing"
    assert yaml.safe_load((folder / "config.yaml").read_text())["package_name_override"] == f"{vendor}_client"


@pytest.mark.parametrize("vendor", EXTRACTED)
def test_spec_is_the_pages_block_verbatim(vendor: str) -> None:
    page = (specs.SPECS / vendor / "source.md").read_text(encoding="utf-8")
    ext, text = specs.extract(vendor, page)
    committed = specs.spec_path(vendor)
    assert committed.suffix == f".{ext}"
    assert committed.read_bytes() == text.encode("utf-8")
    # verbatim: every line of the spec stands in the page, in order
    page_lines = page.splitlines()
    start = page_lines.index(text.splitlines()[0])
    assert page_lines[start : start + len(text.splitlines())] == text.splitlines()
    # deterministic
    assert specs.extract(vendor, page) == (ext, text)


def test_colossyan_keeps_its_one_line_json() -> None:
    path = specs.spec_path("colossyan")
    assert path.name == "openapi.json"
    assert path.read_text().count("\n") == 1


def test_extract_refuses_a_page_without_openapi() -> None:
    page = (specs.SPECS / "ezmodel" / "source.md").read_text(encoding="utf-8")
    with pytest.raises(specs.SpecError, match="ezmodel: the page holds no OpenAPI block"):
        specs.extract("ezmodel", page)


def test_extract_refuses_two_blocks() -> None:
    page = '```yaml\nopenapi: 3.0.0\n```\n\n```json\n{"openapi": "3.0.0"}\n```\n'
    with pytest.raises(specs.SpecError, match="2 OpenAPI blocks"):
        specs.extract("x", page)


@pytest.mark.parametrize("vendor", VENDORS)
def test_patched_spec_validates(vendor: str) -> None:
    specs.validate(vendor, specs.load_patched(vendor))


@pytest.mark.parametrize("vendor", VENDORS)
def test_each_patch_operation_is_explained(vendor: str) -> None:
    ops = specs.load_patches(vendor)
    notes = (specs.SPECS / vendor / "patches.md").read_text(encoding="utf-8")
    rows = [int(n) for n in re.findall(r"^\| (\d+) \|", notes, flags=re.M)]
    assert rows == list(range(len(ops))), "patches.md must have one numbered row per operation"


def test_a_patch_that_no_longer_applies_names_the_operation() -> None:
    doc = specs.load_published("duomi")
    doc["paths"]["/v1/videos/tasks/{task_id}"]["get"]["tags"] = ["Videos"]  # the vendor renamed its tag
    with pytest.raises(
        specs.SpecError, match=r"patch operation #1 \(test /paths/~1v1~1videos~1tasks~1\{task_id\}/get/tags\)"
    ):
        specs.apply_patches("duomi", doc, specs.load_patches("duomi"))


def test_duomi_patches_fix_title_tag_and_auth() -> None:
    doc = specs.load_patched("duomi")
    op = doc["paths"]["/v1/videos/tasks/{task_id}"]["get"]
    assert doc["info"]["title"]
    assert all(tag.isascii() for tag in op["tags"])
    assert [p["name"] for p in op["parameters"]] == ["task_id"]
    assert op["security"] == [{"bearerAuth": []}]
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def _jimmy_table_values() -> set[str]:
    page = (specs.SPECS / "jimmyai" / "source.md").read_text(encoding="utf-8")
    section = page.split("### 任务状态说明", 1)[1].split("###", 1)[0]
    values: set[str] = set()
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0].startswith("`"):
            values |= set(re.findall(r"`([a-z_]+)`", cells[0]))
    return values


def test_jimmyai_enum_patch_matches_the_pages_status_table() -> None:
    table = _jimmy_table_values()
    assert table == {"queued", "pending", "submitted", "processing", "completed", "failed"}
    assert specs.status_values(specs.load_patched("jimmyai")) == table


@pytest.mark.parametrize(
    ("vendor", "expected"),
    [
        ("vozo", {"pending", "processing", "done", "failed"}),
        ("duomi", {"pending", "running", "succeeded", "error"}),
        ("ezmodel", {"pending", "processing", "completed", "failed"}),
        (
            "colossyan",
            {"in_queue", "preprocessing", "preprocessing_finished", "generating", "finished", "failed", "deleted"},
        ),
    ],
)
def test_status_values_found_in_each_spec(vendor: str, expected: set[str]) -> None:
    assert specs.status_values(specs.load_patched(vendor)) == expected


class TestEzmodelHandwritten:
    page = (specs.SPECS / "ezmodel" / "source.md").read_text(encoding="utf-8")
    doc = specs.load_patched("ezmodel")

    def test_says_it_is_handwritten(self) -> None:
        assert specs.is_handwritten("ezmodel")
        assert "WRITTEN BY HAND" in self.doc["info"]["description"]

    def test_covers_every_documented_field(self) -> None:
        section = self.page.split("### Success Response (200)", 1)[1].split("###", 1)[0]
        fields = set(re.findall(r"^\| ([a-z_.]+) \|", section, flags=re.M)) - {"Parameter"}
        schemas = self.doc["components"]["schemas"]
        have = set(schemas["EzmodelVideo"]["properties"]) | {
            f"error.{k}" for k in schemas["EzmodelError"]["properties"]
        }
        assert len(fields) == 15
        assert fields <= have

    def test_covers_every_status_and_auth_and_server(self) -> None:
        section = self.page.split("## Task Status Description", 1)[1].split("\n---\n", 1)[0]
        statuses = set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.M))
        assert statuses == set(self.doc["components"]["schemas"]["EzmodelVideoStatus"]["enum"])
        assert self.doc["servers"][0]["url"] == "https://www.ezmodel.cloud"
        assert self.doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"

    def test_examples_are_the_pages_examples(self) -> None:
        blocks = [json.loads(b.text) for b in specs.fenced_blocks(self.page) if b.language == "json"]
        responses = self.doc["paths"]["/v1/videos/{task_id}"]["get"]["responses"]
        examples = [
            e["value"] for r in responses.values() for e in r["content"]["application/json"]["examples"].values()
        ]
        assert sorted(map(json.dumps, blocks)) == sorted(map(json.dumps, examples))
        assert len(blocks) == 4


def test_describe_changes_names_new_fields_and_enum_values() -> None:
    before = specs.load_patched("vozo")
    after = json.loads(json.dumps(before))
    job = after["components"]["schemas"]["JobStatus"]
    job["properties"]["status"]["enum"].append("cancelled")
    job["properties"]["thumbnail_url"] = {"type": "string"}
    del job["properties"]["video_url"]
    changes = specs.describe_changes(before, after)
    op = "GET /v1/video_generation/{task_id} 200"
    assert f"+ field {op}.thumbnail_url" in changes
    assert f"- field {op}.video_url" in changes
    assert f"+ enum value {op}.status = 'cancelled'" in changes
    assert specs.describe_changes(before, before) == []


def test_document_edits_lists_what_the_summary_does_not_read() -> None:
    """A description, a parameter: no line of describe_changes, an edit of document_edits."""
    before = specs.load_patched("vozo")
    after = json.loads(json.dumps(before))
    operation = next(iter(after["paths"].values()))["get"]
    operation["description"] = "reworded"
    operation.setdefault("parameters", []).append({"name": "verbose", "in": "query", "schema": {"type": "boolean"}})
    assert specs.describe_changes(before, after) == []
    edits = specs.document_edits(before, after)
    path = "/paths/" + json.dumps(next(iter(after["paths"]))) + "/get"
    assert f'replace {path}/description = "reworded"' in edits or f'add {path}/description = "reworded"' in edits
    assert any(f"{path}/parameters" in line and '"name": "verbose"' in line for line in edits)
    assert specs.document_edits(before, before) == []
    count = specs.MAX_EDITS_SHOWN + 5  # a rewritten document: its first edits, and how many more
    listed = specs.document_edits({"x": list(range(count))}, {"x": [-i for i in range(1, count + 1)]})
    assert len(listed) == specs.MAX_EDITS_SHOWN + 1
    assert listed[-1] == "... and 5 more"


def _vozo_with(change: Any) -> dict[str, Any]:
    """vozo's patched document, its status schema changed by ``change(doc, status_schema)``."""
    doc = json.loads(json.dumps(specs.load_patched("vozo")))
    change(doc, doc["components"]["schemas"]["JobStatus"]["properties"]["status"])
    return doc


def _one_of(doc: dict[str, Any], status: dict[str, Any]) -> None:
    values = status.pop("enum")
    status["oneOf"] = [{"type": "string", "enum": values[:2]}, {"type": "string", "enum": [*values[2:], "cancelled"]}]


def _consts(doc: dict[str, Any], status: dict[str, Any]) -> None:
    status["oneOf"] = [{"const": v} for v in [*status.pop("enum"), "cancelled"]]


def _second_operation(doc: dict[str, Any], status: dict[str, Any]) -> None:
    listing = {"type": "object", "properties": {"status": {"type": "string", "enum": ["pending", "cancelled"]}}}
    doc["paths"]["/v1/video_generation"] = {
        "get": {"responses": {"200": {"description": "list", "content": {"application/json": {"schema": listing}}}}}
    }


def _default_answer(doc: dict[str, Any], status: dict[str, Any]) -> None:
    status["enum"].append("cancelled")
    responses = doc["paths"]["/v1/video_generation/{task_id}"]["get"]["responses"]
    responses["default"] = responses.pop("200")


@pytest.mark.parametrize("change", [_one_of, _consts, _second_operation, _default_answer])
def test_a_new_status_value_is_found_wherever_the_spec_puts_it(change: Any) -> None:
    """The refusal of an unmapped status value was got past (exit 0, 'every documented status
    value is mapped') by an enum split over oneOf branches (the last replaced the others), by
    OpenAPI 3.1 consts, by a second operation's answer, or by a 'default' answer."""
    doc = _vozo_with(change)
    assert "cancelled" in specs.status_values(doc)
    assert {"pending", "processing", "done", "failed"} <= specs.status_values(doc)
    if change is not _default_answer:  # there the answer's code changed, so every value moved
        removed = [
            line for line in specs.describe_changes(specs.load_patched("vozo"), doc) if line.startswith("- enum")
        ]
        assert not removed  # a oneOf's last branch replaced the others: the rest read as removed


def test_a_nullable_status_documents_no_null_value() -> None:
    doc = _vozo_with(lambda doc, status: status["enum"].append(None))
    assert specs.status_values(doc) == {"pending", "processing", "done", "failed"}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("openapi: 3.0.3\na: &x [1, 2]\nb: *x\n", "a YAML alias"),  # a billion laughs starts so
        ("openapi: 3.0.3\na: &x\n  - *x\n", "a YAML alias"),  # an anchor holding itself
        ("- openapi\n", "is not a mapping"),
    ],
)
def test_a_document_that_cannot_be_data_is_a_spec_error(text: str, words: str) -> None:
    with pytest.raises(specs.SpecError, match=words):
        specs.parse("vozo", text, "yaml")


def test_unquoted_response_codes_read_as_strings_and_a_ref_to_nowhere_is_a_spec_error() -> None:
    doc = specs.parse("vozo", "openapi: 3.0.3\npaths:\n  /x:\n    get:\n      responses:\n        200: {}\n", "yaml")
    assert list(doc["paths"]["/x"]["get"]["responses"]) == ["200"]
    broken = _vozo_with(lambda doc, status: status.update({"$ref": "#/components/schemas/Nope"}))
    with pytest.raises(specs.SpecError) as info:
        specs.validate("vozo", broken)
    assert str(info.value).startswith("vozo: the patched document could not be validated: $ref '")
    assert str(info.value).endswith("/components/schemas/Nope' points at nothing")  # with or without its #


@pytest.mark.parametrize("slug", ["/tmp/evil", "../specs/vozo", "Vozo", "vozo/..", ""])
def test_a_vendor_slug_is_never_a_path(slug: str) -> None:
    with pytest.raises(specs.SpecError, match="a vendor slug is a lower-case identifier"):
        specs.vendor_dir(slug)


def test_no_generated_path_is_non_ascii() -> None:
    root = Path(specs.ROOT / "generated")
    bad = [p.relative_to(root).as_posix() for p in root.rglob("*") if not p.relative_to(root).as_posix().isascii()]
    assert bad == []


def test_check_generated_names_whatever_is_not_a_vendors_package(tmp_path: Path) -> None:
    """`make check-generated` saw only ``*_client`` folders: a stray module beside them (which
    the wheel ships, and a sitecustomize.py would run at every start) passed as no drift."""
    from scripts.generate import strays

    for name in ("vozo_client", "__pycache__", "sitecustomize.py", "helpers", "acme_client"):
        (tmp_path / name).mkdir() if "." not in name else (tmp_path / name).write_text("")
    assert strays(tmp_path, ["vozo"]) == [
        f"generated/{name} has no spec in specs/ (only <slug>_client packages belong there)"
        for name in ("acme_client", "helpers", "sitecustomize.py")
    ]


def test_check_generated_tells_a_binary_file_or_an_empty_folder_that_differs(tmp_path: Path) -> None:
    """A differing file that is not text was a UnicodeDecodeError; an empty folder was not seen."""
    from scripts.generate import diff_trees

    committed, fresh = tmp_path / "committed", tmp_path / "fresh"
    for root, data in ((committed, b"\xff\x00old"), (fresh, b"\xff\x00new")):
        root.mkdir()
        (root / "blob.bin").write_bytes(data)
    (committed / "empty").mkdir()
    assert diff_trees(committed, fresh, "generated/x") == [
        "differs (not as text): generated/x/blob.bin",
        "stale file, not generated any more: generated/x/empty/",
    ]


def test_a_yaml_block_may_open_with_comments() -> None:
    """A page whose OpenAPI block opens with a comment line was read as holding none."""
    page = "# Vozo\n\n```yaml\n# Vozo API, v1\n\nopenapi: 3.0.3\ninfo: {title: x, version: '1'}\npaths: {}\n```\n"
    ext, text = specs.extract("vozo", page)
    assert ext == "yaml"
    assert text.startswith("# Vozo API, v1\n")  # verbatim


@pytest.mark.parametrize(
    ("text", "ext"),
    [
        ("openapi: 3.0.0\nstatus:\n  enum: [a, expired]\n  enum: [a]\n", "yaml"),
        ('{"openapi": "3.0.0", "enum": ["a", "expired"], "enum": ["a"]}', "json"),
    ],
)
def test_a_key_given_twice_is_refused(text: str, ext: str) -> None:
    """The loaders kept the last one: a status value under the first enum was dropped, unsaid."""
    with pytest.raises(specs.SpecError, match="'enum' is given twice"):
        specs.parse("vozo", text, ext)


@pytest.mark.parametrize(
    ("text", "ext", "words"),
    [
        # YAML 1.1 types these keys (OpenAPI 3 reads YAML 1.2: text): a field renamed "True", unsaid
        ("openapi: 3.0.0\nprops:\n  on: {type: string}\n", "yaml", "the key True at /props is not text"),
        ("openapi: 3.0.0\nprops:\n  ~: {}\n", "yaml", "the key None at /props is not text"),
        ("openapi: 3.0.0\nprops:\n  1.5: {}\n", "yaml", "the key 1.5 at /props is not text"),
        ("openapi: 3.0.0\nresponses:\n  200: {}\n  '200': {}\n", "yaml", "the key '200' is given twice"),
        # values JSON has no form for: a bare TypeError in the generator, or NaN in the shipped openapi.json
        ("openapi: 3.0.0\ninfo: {x-bin: !!binary aGVsbG8=}\n", "yaml", "the value at /info/x-bin is a bytes"),
        ("openapi: 3.0.0\ninfo: {x-set: !!set {? a}}\n", "yaml", "the value at /info/x-set is a set"),
        ("openapi: 3.0.0\ninfo: {x-n: .nan}\n", "yaml", "the number at /info/x-n is nan"),
        ("openapi: 3.0.0\ninfo: {x-n: -.inf}\n", "yaml", "the number at /info/x-n is -inf"),
        ('{"openapi": "3.0.0", "info": {"x-n": NaN}}', "json", "NaN is not JSON"),
        ('{"openapi": "3.0.0", "info": {"x-n": Infinity}}', "json", "Infinity is not JSON"),
    ],
)
def test_what_json_cannot_hold_is_a_spec_error_naming_its_place(text: str, ext: str, words: str) -> None:
    """Every tool after the parse reads the document as JSON (the validator, the generator, the
    wheel's openapi.json): what JSON has no form for is refused where it stands."""
    with pytest.raises(specs.SpecError, match=re.escape(words)):
        specs.parse("vozo", text, ext)


def test_a_complex_yaml_key_is_a_spec_error_not_a_bare_one() -> None:
    with pytest.raises(specs.SpecError, match="does not parse"):
        specs.parse("vozo", "openapi: 3.0.0\npaths:\n  ? [a, b]\n  : {}\n", "yaml")


def _tree_of_refs(children: int, schemas: int = 1) -> dict[str, object]:
    """``schemas`` schemas, each with ``children`` properties naming the next (the last: itself);
    the first one's status an enum."""
    names = [f"Node{i}" for i in range(schemas)]
    components = {
        name: {"type": "object", "properties": {
            "status": {"type": "string", **({"enum": ["pending", "done"]} if i == 0 else {})},
            **{f"c{c}": {"$ref": f"#/components/schemas/{names[min(i + 1, schemas - 1)]}"} for c in range(children)},
        }}
        for i, name in enumerate(names)
    }  # fmt: skip
    answer = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Node0"}}}}
    return {"paths": {"/x/{id}": {"get": {"responses": {"200": answer}}}}, "components": {"schemas": components}}


def test_a_tree_of_refs_is_walked_once_or_refused() -> None:
    """A job whose children are jobs (three properties naming their own schema) was walked to
    the depth limit at every branch, 3^16 nodes: update-spec ran for hours. A schema met again
    on its own path is not walked again; a chain of schemas that fans out past
    MAX_SCHEMA_NODES without a cycle is refused."""
    summary = specs.summarize(_tree_of_refs(children=3))
    assert summary.enums == {"GET /x/{id} 200.status": {"pending", "done"}}
    assert "GET /x/{id} 200.c2" in summary.fields
    assert specs.ApiSummary().limit == specs.MAX_SCHEMA_NODES == 300_000  # what update-spec walks at most
    with pytest.raises(ValueError, match="expand past 20,000 nodes"):  # (300,000 took 6-11 s to reach here)
        specs.summarize(_tree_of_refs(children=5, schemas=12), max_nodes=20_000)


def test_the_state_is_the_field_named_status_before_any_other_enum_of_state_words() -> None:
    """A moderation_status [pending, passed, blocked] listed before status was taken for the job's
    state: update-spec refused the page as a moved status, the sandbox played the wrong field."""
    from videojobs.sandbox._spec import _find_state

    body = {"properties": {
        "moderation_status": {"type": "string", "enum": ["pending", "passed", "blocked"]},
        "status": {"type": "string", "enum": ["queued", "in_progress", "completed", "failed"]},
    }}  # fmt: skip
    assert _find_state(body) == (("status",), ("queued", "in_progress", "completed", "failed"))
    renamed = {"properties": {"task_status": body["properties"]["status"]}}
    assert _find_state(renamed) == (("task_status",), ("queued", "in_progress", "completed", "failed"))


def _edit(path: Path, old: bytes, new: bytes) -> None:
    data = path.read_bytes()
    assert old in data
    path.write_bytes(data.replace(old, new, 1))


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        # a comment line and the next become one line for Python: `import vozo_client` fails
        (lambda c: _edit(c / "types.py", b"\nFileContent", b"\n# x\x1cFileContent"), r"-# x\x1cFileContent"),
        (lambda c: _edit(c / "types.py", b"\nFileContent", "\nFile\u2028Content".encode()), r"File\u2028Content"),
        (lambda c: (c / "client.py").write_bytes((c / "client.py").read_bytes().replace(b"\n", b"\r\n")), r"\r"),
        (lambda c: _edit(c / "openapi.json", b'{\n "components"', b'{\r "components"'), r'{\r "components"'),
        (lambda c: (c / "errors.py").write_bytes((c / "errors.py").read_bytes().rstrip(b"\n")), "no newline at end"),
        (lambda c: (c / "py.typed").write_bytes(b"# Marker file for PEP 561\n"), "no newline at end"),
        (lambda c: (c / "client.py").chmod(0o755), "mode differs: generated/vozo_client/client.py is executable"),
        (lambda c: (c / "errors.py").write_bytes(b"\xef\xbb\xbf" + (c / "errors.py").read_bytes()), r"\ufeff"),
    ],
    ids=["file-separator", "line-separator", "crlf", "lone-cr", "final-newline", "added-newline", "chmod", "bom"],
)
def test_check_generated_sees_every_byte_and_the_executable_bit(tmp_path: Path, edit: Any, words: str) -> None:
    """`make check-generated` compared bytes, then reported the text diff of ``splitlines()``,
    which splits on \\r, \\x1c, \\u2028... too: a hand edit that broke the client (a \\x1c that
    swallows a line), CRLF, a lone CR, a dropped final newline or ``chmod +x`` passed as no drift."""
    from scripts.generate import diff_trees

    fresh = specs.ROOT / "generated/vozo_client"
    committed = tmp_path / "vozo_client"
    shutil.copytree(fresh, committed, ignore=shutil.ignore_patterns("__pycache__"))
    for path in committed.rglob("*"):  # as git checks it out, whatever the umask of this copy
        path.chmod(0o755 if path.is_dir() else 0o644)
    assert diff_trees(committed, fresh, "generated/vozo_client") == []
    edit(committed)
    drift = diff_trees(committed, fresh, "generated/vozo_client")
    assert drift, "a hand edit passed as no drift"
    assert any(words in line for line in drift), drift


def test_describe_changes_names_servers_security_types_and_required_fields() -> None:
    """ "What changed" was silent on a new server (the overlay's default base URL: the bearer key
    goes there), on security schemes, on a field's type and on what is required."""
    before = specs.load_patched("vozo")
    after = json.loads(json.dumps(before))
    after["servers"] = [{"url": "https://api2.vozo.ai"}, *after["servers"]]
    after["components"]["securitySchemes"]["bearerAuth"] = {"type": "apiKey", "in": "query", "name": "key"}
    after["security"] = []
    job = after["components"]["schemas"]["JobStatus"]
    job["properties"]["video_url"] = {"type": "string", "format": "uri", "nullable": True}
    job["required"] = [*job.get("required", []), "video_url"]
    changes = specs.describe_changes(before, after)
    op = "GET /v1/video_generation/{task_id} 200"
    assert "~ first server (the default base URL) https://api.vozo.ai -> https://api2.vozo.ai" in changes
    assert "+ server https://api2.vozo.ai" in changes
    assert any(line.startswith("~ security scheme bearerAuth {") and '"in": "query"' in line for line in changes)
    assert '~ security requirement [{"bearerAuth": []}] -> []' in changes
    assert f"~ field {op}.video_url type string -> string (uri) | null" in changes
    assert f"+ required field {op}.video_url" in changes
    assert specs.describe_changes(after, after) == []


def test_a_field_required_in_an_allof_branch_beside_its_base_is_named() -> None:
    """``allOf: [$ref Base, {required: [status]}]`` (OpenAPI's usual way to make a base's field
    required) was no longer named once required fields were read beside their properties only."""
    before = specs.load_patched("vozo")
    after = json.loads(json.dumps(before))
    schemas = after["components"]["schemas"]
    schemas["JobBase"] = schemas["JobStatus"]
    schemas["JobStatus"] = {"allOf": [{"$ref": "#/components/schemas/JobBase"}, {"required": ["video_url"]}]}
    op = "GET /v1/video_generation/{task_id} 200"
    assert f"+ required field {op}.video_url" in specs.describe_changes(before, after)


@pytest.mark.parametrize(
    ("servers", "words"),
    [
        ([{"url": "http://api.vozo.ai"}], "the first server 'http://api.vozo.ai' is not an absolute https:// URL"),
        ([{"url": "/v1"}], "the first server '/v1' is not an absolute https:// URL"),
        ([{"url": "https://{region}.vozo.ai"}], "is not an absolute https:// URL"),
        ([{"url": "https://user:pw@api.vozo.ai"}], "is not an absolute https:// URL"),
        ([{"url": "https://[::1"}], "is not an absolute https:// URL"),
        ([], "the document names no server"),
        (None, "the document names no server"),
    ],
)
def test_the_first_server_must_be_an_absolute_https_url(servers: Any, words: str) -> None:
    """The overlay's default base URL: a page that moved it to http:// had the API key sent in
    plaintext; a page with none failed later with the sandbox's bare KeyError 'servers'."""
    doc = specs.load_patched("vozo")
    if servers is None:
        del doc["servers"]
    else:
        doc["servers"] = servers
    with pytest.raises(specs.SpecError, match=re.escape(f"vozo: {words}") if words.startswith("the") else words):
        specs.validate("vozo", doc)


@pytest.mark.parametrize(
    "ref",
    ["http://127.0.0.1:9/schema.json", "{file}", "schemas.yaml#/Job", "#", "//evil.example/x"],
)
def test_a_ref_that_does_not_point_into_the_document_is_refused(tmp_path: Path, ref: str) -> None:
    """The validator followed a page's remote and file: $refs: a page could make CI fetch any URL
    (11 s on one that does not answer) or read a local file. Refused before it is validated."""
    secret = tmp_path / "secret.json"
    secret.write_text('{"type": "string"}', encoding="utf-8")
    ref = ref.format(file=secret.as_uri())
    doc = _vozo_with(lambda doc, status: status.clear() or status.update({"$ref": ref}))
    with pytest.raises(specs.SpecError) as info:
        specs.validate("vozo", doc)
    assert str(info.value).startswith(
        f"vozo: the document's $ref {ref!r} (at /components/schemas/JobStatus/properties/status) does not point "
        "into the document: only #/... references are taken"
    )


@pytest.mark.parametrize("vendor", specs.vendors())
def test_the_status_answer_requires_only_the_state_once_patched(vendor: str) -> None:
    specs.check_required(vendor, specs.load_patched(vendor))  # what make generate checks


def test_a_status_answer_that_requires_more_than_the_state_is_refused_before_generating() -> None:
    """A review's sixth vendor required ``task_id`` beside its state: an answer without it read as
    no state at all (``MalformedResponseError: no readable state: task_id is missing``). Duomi's
    page, as published, requires every field (Apifox's default): its patches keep the state."""
    with pytest.raises(specs.SpecError, match=r"duomi: .*requires action, create_time, data, data\.videos, id"):
        specs.check_required("duomi", specs.load_published("duomi"))
    doc = specs.load_patched("vozo")
    doc["components"]["schemas"]["JobStatus"]["required"] = ["status", "task_id"]
    with pytest.raises(specs.SpecError, match=r"requires task_id besides the job's state \(status\).*patches\.json"):
        specs.check_required("vozo", doc)
    # within an object that may be absent, a required field costs that object only: not refused
    doc["components"]["schemas"]["JobStatus"]["required"] = ["status"]
    doc["components"]["schemas"]["JobStatus"]["properties"]["meta"] = {
        "type": "object",
        "required": ["id"],
        "properties": {"id": {"type": "string"}},
    }
    specs.check_required("vozo", doc)


def test_an_invalid_document_is_refused_with_the_place_and_the_reason_of_its_typo() -> None:
    """``type: integr`` in an answer's schema was refused with the validator's top message, a
    1,271-character dump of the node and no place; now the deepest reason, and where it is."""
    doc = specs.load_patched("duomi")
    schema = doc["paths"]["/v1/videos/tasks/{task_id}"]["get"]["responses"]["200"]["content"]["application/json"]
    schema["schema"]["properties"]["progress"]["type"] = "integr"
    with pytest.raises(specs.SpecError) as caught:
        specs.validate("duomi", doc)
    message = str(caught.value)
    assert "schema.properties.progress.type: 'integr' is not one of ['array', 'boolean', 'integer'" in message
    assert len(message) < 400
