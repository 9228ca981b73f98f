"""Which vendors exist: slug → the adapter class that speaks for it, imported on first use.

The one list of vendors: the client, the CLI, the tests and the benchmark read it (the
sandbox serves every vendor whose spec is installed, and a test holds the two lists equal).
Explicit and alphabetical on purpose (like fsspec's registry): a vendor is one line here, or
one ``register_vendor`` call for a vendor that lives outside this package. Nothing is
imported until a vendor is used, so ``import videojobs`` stays fast.

A sixth vendor is:

1. ``specs/<slug>/`` (its page, spec, patches, generator config) and ``make generate``;
2. ``overlay/videojobs/vendors/<slug>.py``: a ``BaseAdapter`` subclass naming its generated
   client, endpoint module and model, its state table and ``to_status`` (copy ``vozo.py``);
3. one line below.

The sandbox then simulates it from its spec, and the conformance suites run for it once
``tests/cases.py`` has its fixtures (``tests/test_sixth_vendor.py`` does all of this for a
throwaway vendor built in a temporary folder).
"""

from __future__ import annotations

import functools
import importlib
import threading
from typing import cast

from ._adapter import VendorAdapter
from ._exceptions import ConfigurationError

__all__ = ["adapter_class", "known_vendors", "register_vendor", "registry"]

registry: dict[str, str] = {
    "colossyan": "videojobs.vendors.colossyan:ColossyanAdapter",
    "duomi": "videojobs.vendors.duomi:DuomiAdapter",
    "ezmodel": "videojobs.vendors.ezmodel:EzmodelAdapter",
    "jimmyai": "videojobs.vendors.jimmyai:JimmyaiAdapter",
    "vozo": "videojobs.vendors.vozo:VozoAdapter",
}
_lock = threading.Lock()


def known_vendors() -> tuple[str, ...]:
    """Every known vendor slug, sorted."""
    return tuple(sorted(registry))


def register_vendor(slug: str, target: str, *, clobber: bool = False) -> None:
    """Make a vendor known: ``target`` is ``"module:AdapterClass"``, imported on first use.

    For vendors whose adapter lives outside videojobs (fsspec's ``register_implementation``).
    """
    if not slug.isidentifier() or slug != slug.lower():
        raise ConfigurationError(f"a vendor slug is a lower-case identifier, not {slug!r}")
    if ":" not in target:
        raise ConfigurationError(f"target must be 'module:AdapterClass', not {target!r}")
    with _lock:
        if slug in registry and not clobber and registry[slug] != target:
            raise ConfigurationError(f"vendor {slug!r} is already registered (pass clobber=True to replace it)")
        registry[slug] = target
        adapter_class.cache_clear()


@functools.cache
def adapter_class(slug: str) -> type[VendorAdapter]:
    """The adapter class for ``slug``, importing its module (and its generated client) now."""
    try:
        target = registry[slug]
    except (KeyError, TypeError):
        raise ConfigurationError(f"unknown vendor {slug!r}; known vendors: {', '.join(known_vendors())}") from None
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if cls.name != slug:
        raise ConfigurationError(f"registry entry {slug!r} points at an adapter named {cls.name!r}")
    return cast(type[VendorAdapter], cls)
