"""Validate a vendor's JSON answer against the response schema its vendored spec gives."""

from __future__ import annotations

import functools
from typing import Any

from openapi_schema_validator import OAS30Validator, OAS31Validator

from scripts import specs


def _deref(doc: dict[str, Any], node: Any, depth: int = 0) -> Any:
    if depth > 32:
        raise ValueError("$ref nesting too deep")
    if isinstance(node, dict):
        if "$ref" in node:
            return _deref(doc, specs.resolve_ref(doc, node), depth + 1)
        return {k: _deref(doc, v, depth + 1) for k, v in node.items()}
    if isinstance(node, list):
        return [_deref(doc, v, depth + 1) for v in node]
    return node


@functools.cache
def patched_doc(vendor: str) -> dict[str, Any]:
    """The spec as patched, as it ships in the vendor's generated package (``openapi.json``)."""
    import importlib.resources
    import json

    text = importlib.resources.files(f"{vendor}_client").joinpath("openapi.json").read_text(encoding="utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


def published_doc(vendor: str) -> dict[str, Any] | None:
    """The spec as the vendor published it, for vendors vendored in specs/ (None for others)."""
    return specs.load_published(vendor) if vendor in specs.vendors() else None


def documented_states(vendor: str) -> set[str]:
    return specs.status_values(patched_doc(vendor))


@functools.cache
def response_schema(vendor: str, status: int, *, published: bool = False) -> dict[str, Any] | None:
    """The dereferenced JSON schema for a status code, or None when the spec documents none.

    ``published``: from the vendor's document as published (Duomi's marks every field required),
    rather than as patched for the generator (which relaxes that, see specs/duomi/patches.md)."""
    doc = published_doc(vendor) if published else patched_doc(vendor)
    if doc is None:
        return None
    (operation,) = [op for item in doc["paths"].values() for op in item.values() if isinstance(op, dict)]
    response = operation["responses"].get(str(status)) or operation["responses"].get("default")
    if not response or "content" not in response:
        return None
    return _deref(doc, response["content"]["application/json"]["schema"])


def validate(vendor: str, status: int, body: Any) -> bool:
    """Raise when ``body`` breaks the spec, as patched or as published; False when it has no schema for ``status``."""
    version = patched_doc(vendor)["openapi"]
    cls = OAS31Validator if version.startswith("3.1") else OAS30Validator
    checked = False
    for published in (False, True):
        schema = response_schema(vendor, status, published=published)
        if schema is not None:
            cls(schema).validate(body)
            checked = True
    return checked
