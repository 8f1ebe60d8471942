"""The ``embedlab`` console script.

It imports nothing of embedlab until Ctrl-C is handled, so that an interrupt while the package
and its plugins load (seconds on a busy machine) ends like one anywhere else: one line on stderr,
exit status 130, no traceback.
"""

from __future__ import annotations

import sys
from typing import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run :func:`embedlab.cli.main` on ``argv`` (default: ``sys.argv[1:]``); Ctrl-C at any point
    exits 130."""
    try:
        from embedlab.cli import main as cli_main

        return cli_main(argv)
    except KeyboardInterrupt:
        print("embedlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
