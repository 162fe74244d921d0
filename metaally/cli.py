"""Command line: ``metaally validate PATH`` checks a studies CSV; ``metaally report PATH
--out DIR`` runs the whole analysis on it (effect sizes, pooled tables and forest plots
per coding column, funnel plot, summary of findings, summary.md and a self-contained
report.html); ``metaally --version`` prints the version.

Exit status: 0 when all is well, 2 when the input has problems or cannot be
read.  Problems are printed one per line; a Python traceback never reaches the
user.
"""

from __future__ import annotations

import argparse
import sys

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PROBLEMS",
    "main",
]

EXIT_OK = 0
EXIT_PROBLEMS = 2
EXIT_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    """``metaally validate PATH`` / ``metaally report PATH --out DIR``; returns the exit code."""
    from metaally import __version__

    parser = argparse.ArgumentParser(prog="metaally", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"metaally {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p_val = sub.add_parser("validate", help="check a studies CSV; exit 2 on problems")
    p_val.add_argument("path", help="the CSV file, or - to read standard input")
    p_rep = sub.add_parser("report", help="analyse a studies CSV and write tables, figures "
                                          "and report.html to a folder")
    p_rep.add_argument("path")
    p_rep.add_argument("--out", required=True, help="output folder (created if needed)")
    p_rep.add_argument("--model", default="che", choices=["che", "aggregate", "univariate"])
    p_rep.add_argument("--rho", type=float, default=0.6,
                       help="assumed within-study sampling correlation (default 0.6)")
    p_rep.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        if args.command == "validate":
            return _validate(args.path)
        if args.command == "report":
            return _report(args)
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
    from metaally.data.reading import validate_file
    from metaally.data.studies import STDIN_NAME, capped_problems

    _tolerate_any_encoding(sys.stdout, sys.stderr)
    problems = validate_file(path)
    for line in capped_problems(problems):
        print(line, file=sys.stderr)
    if problems:
        return EXIT_PROBLEMS
    print(f"{STDIN_NAME if path == '-' else path}: OK")
    return EXIT_OK


def _report(args: argparse.Namespace) -> int:
    from metaally.data.reading import validate_file
    from metaally.data.studies import StudiesValidationError, capped_problems
    from metaally.report.pipeline import run_report

    _tolerate_any_encoding(sys.stdout, sys.stderr)
    problems = validate_file(args.path)
    for line in capped_problems(problems):
        print(line, file=sys.stderr)
    if problems:
        return EXIT_PROBLEMS
    if not -1 < args.rho < 1:
        print(f"metaally: --rho must lie in (-1, 1); got {args.rho:g}", file=sys.stderr)
        return EXIT_PROBLEMS
    try:
        run = run_report(args.path, args.out, model=args.model, rho=args.rho,
                         progress=False if args.quiet else None)
    except StudiesValidationError as exc:  # pragma: no cover - validated just above
        print(exc, file=sys.stderr)
        return EXIT_PROBLEMS
    print(f"{args.path}: {run.k_studies} studies, {run.k_effects} effects; wrote "
          f"{len(run.files)} files to {args.out} (open {run.files[-1]})")
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
