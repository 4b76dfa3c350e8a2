#!/usr/bin/env python
"""Get the course data: build the synthetic default offline, or fetch the real licensed assets.

    python data_download.py --list                 every asset: licence, size, where it goes, present?
    python data_download.py [synthetic]            build the synthetic embedded default (the default asset;
                                                   what `make data` runs; offline)
    python data_download.py flame2020 landmark-embedding
    python data_download.py now --archive ~/Downloads/scans.tar.gz ...   install files downloaded by hand

Accounts: FLAME (flame2020, flame2023-open), NoW (now), CoMA (coma). Credentials are read from the
environment (FLAME_USERNAME/FLAME_PASSWORD, NOW_USERNAME/NOW_PASSWORD, COMA_USERNAME/COMA_PASSWORD) or
asked for in the terminal; they are never accepted on the command line and never printed.
Data goes to $FACECOURSE_DATA (default: data/ in this checkout). The registry lives in
facecourse/data/assets.py.
"""

from __future__ import annotations

import argparse
import sys
import textwrap

from facecourse.data.assets import ASSETS, build_synthetic, describe_assets, fetch_asset
from facecourse.data.download import DownloadError
from facecourse.data.paths import data_dir


def format_table(rows: list[dict[str, str]]) -> str:
    """The ``--list`` text: one block per asset."""
    lines = [f"data directory: {data_dir()}", ""]
    for row in rows:
        lines.append(f"{row['name']:<20}[{row['status']}]  {row['title']}")
        for key in ("licence", "size", "location", "account"):
            lines.append(f"{'':<20}{key + ':':<10}{row[key]}")
        lines.append(f"{'':<20}{'terms:':<10}{row['licence_url']}")
        if row["note"]:
            lines += textwrap.wrap(row["note"], 116, initial_indent=" " * 20 + "note:     ",
                                   subsequent_indent=" " * 30)
        lines.append("")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """Command-line parser (deliberately without any credential option)."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Credentials: environment variables or an interactive prompt only.",
    )
    parser.add_argument("assets", nargs="*", metavar="ASSET",
                        help=f"one or more of: {', '.join(ASSETS)} (default: synthetic)")
    parser.add_argument("--list", action="store_true", help="list every asset and whether it is present")
    parser.add_argument("--force", action="store_true", help="synthetic: rebuild even if present")
    parser.add_argument("--archive", nargs="+", metavar="FILE",
                        help="install official files you downloaded yourself instead of downloading them")
    parser.add_argument("--keep-downloads", action="store_true", help="keep the archives in <data>/downloads")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 a step failed, 2 usage error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        print(format_table(describe_assets()))
        return 0
    if not args.assets:
        args.assets = ["synthetic"]
    unknown = [a for a in args.assets if a not in ASSETS]
    if unknown:
        parser.error(f"unknown asset(s) {unknown}; choose from {', '.join(ASSETS)}")
    if args.archive and len(args.assets) != 1:
        parser.error("--archive needs exactly one asset name")
    status = 0
    for name in args.assets:
        try:
            if name == "synthetic":
                build_synthetic(force=args.force)
            else:
                fetch_asset(name, local_files=args.archive, progress=not args.no_progress,
                            keep_downloads=args.keep_downloads)
        except (DownloadError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            status = 1
        except KeyboardInterrupt:
            print(f"\n{name}: interrupted; run the same command again to resume.", file=sys.stderr)
            return 130
    return status


if __name__ == "__main__":
    raise SystemExit(main())
