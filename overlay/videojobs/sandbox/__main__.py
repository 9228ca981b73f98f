"""``python -m videojobs.sandbox [--host H] [--port P] [--time-scale X]``: serve the sandbox with uvicorn."""

from __future__ import annotations

import argparse
import sys


def serve(host: str, port: int, time_scale: float, api_key: str, epoch: float | None = None) -> None:
    try:
        import uvicorn
    except ImportError as exc:
        raise SystemExit(
            "serving the sandbox needs uvicorn: pip install 'videojobs[sandbox]' "
            "(the embedded sandbox, Sandbox().transport(), needs nothing more)"
        ) from exc

    from . import Sandbox

    sandbox = Sandbox(time_scale=time_scale, api_key=api_key, epoch=epoch)
    print(f"videojobs sandbox on http://{host}:{port}  (key: {api_key}, time scale: {time_scale:g}x)", flush=True)
    for vendor, url in sandbox.base_urls(f"http://{host}:{port}").items():
        print(f"  {vendor:<10} {url}", flush=True)
    uvicorn.run(sandbox, host=host, port=port, log_level="warning", lifespan="on")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m videojobs.sandbox", description="Serve the vendor sandbox.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8710)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--api-key", default="sk-sandbox")
    parser.add_argument("--epoch", type=float, default=None, help="the vendors' clock at start (Unix seconds)")
    args = parser.parse_args(argv)
    serve(args.host, args.port, args.time_scale, args.api_key, args.epoch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
