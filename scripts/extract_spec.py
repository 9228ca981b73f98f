"""Extract a vendor's OpenAPI block from its page, verbatim.

    python scripts/extract_spec.py VENDOR [VENDOR ...]   # writes specs/VENDOR/openapi.{yaml,json}
    python scripts/extract_spec.py --all

Deterministic: the same ``source.md`` always gives the same bytes. A vendor whose page
holds no OpenAPI (ezmodel) has a hand-written spec and is skipped with a note.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts import specs


def extract_to_disk(vendor: str) -> Path | None:
    """Write the extracted block; return its path, or None for a hand-written spec."""
    if specs.is_handwritten(vendor):
        return None
    folder = specs.vendor_dir(vendor)
    page = (folder / "source.md").read_text(encoding="utf-8")
    ext, text = specs.extract(vendor, page)
    target = folder / f"openapi.{ext}"
    for stale in folder.glob("openapi.*"):
        if stale != target:
            stale.unlink()
    specs.write_file(target, text.encode("utf-8"))
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("vendors", nargs="*")
    parser.add_argument("--all", action="store_true")
    args = parser.parse_args(argv)
    chosen = specs.vendors() if args.all or not args.vendors else args.vendors
    try:
        for vendor in chosen:
            path = extract_to_disk(vendor)
            if path is None:
                print(f"{vendor}: publishes no OpenAPI; specs/{vendor}/openapi.yaml is hand-written from source.md")
            else:
                print(f"{vendor}: extracted {path.relative_to(specs.ROOT)}")
    except specs.SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
