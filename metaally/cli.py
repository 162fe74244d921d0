"""Command line: ``metaally validate PATH`` (more subcommands are added per stage)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="metaally", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_val = sub.add_parser("validate", help="check a studies CSV; exit 2 on problems")
    p_val.add_argument("path")
    args = parser.parse_args(argv)
    if args.command == "validate":
        from metaally.studies import validate_file

        problems = validate_file(args.path)
        for line in problems:
            print(line, file=sys.stderr)
        if problems:
            return 2
        print(f"{args.path}: OK")
        return 0
    return 1  # pragma: no cover - argparse enforces a command


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
