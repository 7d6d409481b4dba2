"""``python -m tcvc.weights fetch | list``: the released weights from the command line.

``fetch [--mirror URL] [--from DIR_OR_ZIP] [--quiet]`` brings the released files into the cache
(``tcvc.weights.fetch``); ``list`` shows each file's size, SHA-256 prefix and state (verified,
unverified, missing) and the command that fetches what is missing. A user error prints
``error: <message>`` and exits with status 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from tcvc.errors import UserError
from tcvc.weights import catalog
from tcvc.weights.cache import FETCH_COMMAND, cache_dir, status
from tcvc.weights.fetch import fetch

__all__ = ["format_list", "main"]

_USE = "ckpt=released, model.flownet_weights=released, model.idc_weights=released"


def _size(size: int | None) -> str:
    if size is None:
        return "-"
    return f"{size / 1e6:,.1f} MB" if size >= 1_000_000 else f"{size / 1e3:,.1f} kB"


def format_list(*, home: Path | None = None) -> str:
    """The text of ``list``: the cache folder, a line per released file, what to run next."""
    home = cache_dir() if home is None else home
    states = status(home=home)
    width = max(len(s.name) for s in states)
    lines = [f"weights cache: {home} (TCVC_HOME sets it)"]
    for state in states:
        sha = f"sha256 {state.sha256[:8]}" if state.sha256 else "-"
        note = {
            "verified": "verified",
            "unverified": "unverified (put there by hand: verified on first use, or by fetch)",
            "missing": "missing",
        }[state.state]
        lines.append(f"  {state.name:<{width}}  {_size(state.size):>10}  {sha:<15}  {note}")
    if any(s.state == "missing" for s in states):
        lines.append(
            f"missing: run `{FETCH_COMMAND}` (or put the files downloaded by hand in {home})"
        )
    elif all(s.state == "verified" for s in states):
        lines.append(f"all verified: {_USE} use them")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tcvc.weights", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    fetch_parser = commands.add_parser("fetch", help="download and verify the released files")
    where = fetch_parser.add_mutually_exclusive_group()
    where.add_argument(
        "--mirror",
        metavar="URL",
        default=catalog.BASE_URL,
        help=f"the base URL of the archives, instead of {catalog.BASE_URL}",
    )
    where.add_argument(
        "--from",
        dest="source",
        metavar="DIR_OR_ZIP",
        type=Path,
        help="take the files or archives from this local folder or zip (no download)",
    )
    fetch_parser.add_argument("--quiet", action="store_true", help="no progress bar")
    commands.add_parser("list", help="what is cached and verified")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "fetch":
            fetch(base_url=args.mirror, source=args.source, progress=not args.quiet)
        else:
            print(format_list())
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
