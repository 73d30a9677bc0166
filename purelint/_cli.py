"""Command-line interface for purelint (placeholder until the engine lands)."""

import sys


def main(argv: list[str] | None = None) -> int:
    print("purelint: no rules yet", file=sys.stderr)
    return 0
