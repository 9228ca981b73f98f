"""Which vendors exist: slug → the adapter class that speaks for it, imported on first use.

The one list of vendors is the entry-point group ``videojobs.vendors`` (pyproject.toml's
``[project.entry-points."videojobs.vendors"]``, one ``slug = "module:AdapterClass"`` line a
vendor, alphabetical). The client, the CLI and the tests read it here; the wheel ships every
generated client (its package list names none); the sandbox reads the same group by name,
without importing the client. A package of its own can add a vendor to the group (like
pytest's plugins), and ``register_vendor`` adds one at run time (fsspec's
``register_implementation``). Nothing is read until a vendor is first needed (importing
``importlib.metadata`` and scanning the installed distributions costs a few milliseconds),
and nothing is imported until a vendor is used, so ``import videojobs`` stays fast.

A sixth vendor is:

1. ``specs/<slug>/`` (its page, spec, patches, generator config) and ``make generate``, which
   writes ``generated/<slug>_client`` (its spec and ``py.typed`` inside; the wheel takes it);
2. ``overlay/videojobs/vendors/<slug>.py``: a :class:`videojobs.BaseAdapter` subclass naming its
   generated client, endpoint module and model, its state table and ``to_status`` (copy
   ``vozo.py``);
3. one line in pyproject.toml's ``[project.entry-points."videojobs.vendors"]``, then
   ``make install`` (an editable install reads its entry points when it is installed).

The sandbox then simulates it from its spec, and the conformance suites run for it once
``tests/cases.py`` has its fixtures (its answers and the states they mean).
``tests/test_sixth_vendor.py`` does this for a throwaway vendor kept in a package of its own,
and builds videojobs' wheel with that vendor added to check that nothing else needs writing.
"""

from __future__ import annotations

import functools
import importlib
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final, cast

from ._exceptions import ConfigurationError

if TYPE_CHECKING:
    from ._adapter import VendorAdapter  # the adapters (and attrs, under them) load with the first vendor used

__all__ = ["GROUP", "adapter_class", "known_vendors", "register_vendor", "targets"]

GROUP: Final = "videojobs.vendors"
"""The entry-point group that lists the vendors (the sandbox's ``_spec.VENDOR_GROUP`` too)."""

_lock = threading.Lock()
_targets: dict[str, str] | None = None
"""slug → ``"module:AdapterClass"``: the group's entry points, then ``register_vendor``'s; read on first need."""


def _after_fork() -> None:  # a thread reading the entry points at fork() would hold it for ever in the child
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def targets() -> Mapping[str, str]:
    """slug → ``"module:AdapterClass"`` for every known vendor (the entry points are read once)."""
    found = _targets
    return found if found is not None else _load()


def _load() -> dict[str, str]:
    global _targets
    from importlib.metadata import entry_points

    with _lock:
        if _targets is None:
            found: dict[str, str] = {}
            for point in entry_points(group=GROUP):  # in sys.path order: the first of a name wins, as imports do
                _check(point.name, point.value, f"entry point {point.name!r} of group {GROUP!r}")
                found.setdefault(point.name, point.value)
            _targets = found
        return _targets


def _check(slug: str, target: str, where: str) -> None:
    if not isinstance(slug, str) or not slug.isidentifier() or slug != slug.lower():
        raise ConfigurationError(f"{where}: a vendor slug is a lower-case identifier, not {slug!r}")
    module, _, name = target.partition(":") if isinstance(target, str) else ("", "", "")
    if not (module and name.isidentifier() and all(part.isidentifier() for part in module.split("."))):
        raise ConfigurationError(f"{where}: the target must be 'module:AdapterClass', not {target!r}")


def known_vendors() -> tuple[str, ...]:
    """Every known vendor slug, sorted."""
    return tuple(sorted(targets()))


def register_vendor(slug: str, target: str, *, clobber: bool = False) -> None:
    """Make a vendor known at run time: ``target`` is ``"module:AdapterClass"``, imported on first use.

    For an adapter that is not installed with an entry point in the ``videojobs.vendors`` group.
    """
    _check(slug, target, "register_vendor")
    table = _load()
    with _lock:
        if slug in table and not clobber and table[slug] != target:
            raise ConfigurationError(f"vendor {slug!r} is already registered (pass clobber=True to replace it)")
        table[slug] = target
        adapter_class.cache_clear()


@functools.cache
def adapter_class(slug: str) -> type[VendorAdapter]:
    """The adapter class for ``slug``, importing its module (and its generated client) now."""
    try:
        target = targets()[slug]
    except (KeyError, TypeError):
        raise ConfigurationError(f"unknown vendor {slug!r}; known vendors: {', '.join(known_vendors())}") from None
    module_name, _, class_name = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except Exception as exc:  # a plugin's import can raise anything: the vendor named, typed
        from ._text import their_words

        raise ConfigurationError(
            f"vendor {slug!r} points at {target!r}, which cannot be loaded: {type(exc).__name__}: {their_words(exc)}"
        ) from exc
    name = getattr(cls, "name", None)
    if not isinstance(cls, type) or not callable(getattr(cls, "to_status", None)) or not isinstance(name, str):
        raise ConfigurationError(f"vendor {slug!r} points at {target!r}, which is not a videojobs adapter class")
    if name != slug:
        raise ConfigurationError(f"vendor {slug!r} points at {target!r}, an adapter named {name!r}")
    return cast("type[VendorAdapter]", cls)
