"""The vendored specs: verbatim extraction, patches, validation, change summaries."""

from __future__ import annotations

import json
import re
from pathlib import Path

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
    assert "+ field 200.thumbnail_url" in changes
    assert "- field 200.video_url" in changes
    assert "+ enum value 200.status = 'cancelled'" in changes
    assert specs.describe_changes(before, before) == []


def test_no_generated_path_is_non_ascii() -> None:
    root = Path(specs.ROOT / "generated")
    bad = [p.relative_to(root).as_posix() for p in root.rglob("*") if not p.relative_to(root).as_posix().isascii()]
    assert bad == []
