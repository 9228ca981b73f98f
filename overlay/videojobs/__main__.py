"""``python -m videojobs``: the ``videojobs`` command."""

import sys

from ._cli import main

sys.exit(main())
