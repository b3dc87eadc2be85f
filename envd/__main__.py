"""Process entry point.

``envd init`` is dispatched before anything heavy is imported so that the
tiny init starts fast; every other command goes through the click CLI.
"""

from __future__ import annotations

import sys


def main() -> None:
    argv = sys.argv[1:]
    if argv and argv[0] == "init":
        from envd import init

        sys.exit(init.main(argv[1:]))
    from envd.cli import run_cli

    sys.exit(run_cli())


if __name__ == "__main__":
    main()
