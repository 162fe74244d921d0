"""Command line: ``metaally validate PATH`` (more subcommands are added per stage).

Exit status: 0 when all is well, 2 when the input has problems or cannot be
read.  Problems are printed one per line; a Python traceback never reaches the
user.
"""

from __future__ import annotations

import argparse
import sys

EXIT_OK = 0
EXIT_PROBLEMS = 2
EXIT_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    """``python -m metaally validate PATH``; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="metaally", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_val = sub.add_parser("validate", help="check a studies CSV; exit 2 on problems")
    p_val.add_argument("path", help="the CSV file, or - to read standard input")
    args = parser.parse_args(argv)
    try:
        if args.command == "validate":
            return _validate(args.path)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        print(f"metaally: cannot read {args.path}: {reason}", file=sys.stderr)
        return EXIT_PROBLEMS
    except KeyboardInterrupt:
        print("metaally: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # the CLI's last line of defence: one line, no traceback
        print(f"metaally: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    return EXIT_PROBLEMS  # pragma: no cover - argparse enforces a command


def _validate(path: str) -> int:
    """Print the first problems (then how many more) and exit 2, or print OK."""
    from metaally.data.studies import STDIN_NAME, capped_problems, validate_file

    _tolerate_any_encoding(sys.stdout, sys.stderr)
    problems = validate_file(path)
    for line in capped_problems(problems):
        print(line, file=sys.stderr)
    if problems:
        return EXIT_PROBLEMS
    print(f"{STDIN_NAME if path == '-' else path}: OK")
    return EXIT_OK


def _tolerate_any_encoding(*streams: object) -> None:
    """Characters the terminal cannot show (an ASCII-only locale) are printed as
    backslash escapes instead of raising ``UnicodeEncodeError``."""
    for stream in streams:
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
