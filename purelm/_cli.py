"""Command-line interface for purelm (filled in by the CLI work)."""

import sys


def main(argv: list[str] | None = None) -> int:
    print("purelm: no commands yet", file=sys.stderr)
    return 2
