"""Which vendors exist: slug → the adapter class that speaks for it, imported on first use.

Explicit and alphabetical on purpose (like fsspec's registry): adding a vendor is one
line here. Nothing is imported until a vendor is used, so ``import videojobs`` stays fast.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import cast

from ._adapter import VendorAdapter
from ._exceptions import ConfigurationError

__all__ = ["adapter_class", "known_vendors", "registry", "vendors"]

registry: Mapping[str, str] = MappingProxyType(
    {
        "colossyan": "videojobs.vendors.colossyan:ColossyanAdapter",
        "duomi": "videojobs.vendors.duomi:DuomiAdapter",
        "ezmodel": "videojobs.vendors.ezmodel:EzmodelAdapter",
        "jimmyai": "videojobs.vendors.jimmyai:JimmyaiAdapter",
        "vozo": "videojobs.vendors.vozo:VozoAdapter",
    }
)


def known_vendors() -> tuple[str, ...]:
    """Every known vendor slug, sorted. (Public as ``videojobs.known_vendors``: the name
    ``videojobs.vendors`` is the package of adapter modules.)"""
    return tuple(registry)


vendors = known_vendors


@functools.cache
def adapter_class(slug: str) -> type[VendorAdapter]:
    """The adapter class for ``slug``, importing its module (and its generated client) now."""
    try:
        target = registry[slug]
    except (KeyError, TypeError):
        raise ConfigurationError(f"unknown vendor {slug!r}; known vendors: {', '.join(registry)}") from None
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if cls.name != slug:
        raise ConfigurationError(f"registry entry {slug!r} points at an adapter named {cls.name!r}")
    return cast(type[VendorAdapter], cls)
