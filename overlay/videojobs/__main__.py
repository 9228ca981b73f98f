"""``python -m videojobs`` and the ``videojobs`` command: the CLI, loaded under a Ctrl-C guard.

Loading ``_cli`` (asyncio, the client, argparse) takes about 0.1 s, before its ``main`` can catch
anything: a Ctrl-C then printed a traceback of whatever import it landed in. Here it ends the
command as a Ctrl-C during it does (``interrupted``, exit 130), so this module imports nothing
of videojobs at its top.
"""

import sys

EXIT_INTERRUPTED = 130
"""128 + SIGINT: ``_cli_output.EXIT_INTERRUPTED``, restated so that nothing is loaded before the guard."""


def run() -> int:
    """The ``videojobs`` command's entry point."""
    try:
        from ._cli import main
    except KeyboardInterrupt:
        sys.stderr.write("videojobs: interrupted\n")
        return EXIT_INTERRUPTED
    return main()


if __name__ == "__main__":
    sys.exit(run())
