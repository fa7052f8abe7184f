"""What every bench command shares: a parser whose errors are one line, and a main() that turns HeteroError
into that same one line with exit status 2 instead of a traceback."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from hetero.errors import HeteroError


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's usage dump would bury the one line that matters
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def main(run: Callable[[list[str] | None], int], argv: list[str] | None = None, prog: str = "bench") -> int:
    try:
        return run(argv)
    except HeteroError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; files already written are complete", file=sys.stderr)
        return 130


def output_args(p: argparse.ArgumentParser, default_name: str) -> None:
    """--out, --name and --replace, read by hetero.results.RunFolder: a run never overwrites another."""
    p.add_argument("--out", default="results", help="folder for result files (default results/)")
    p.add_argument("--name", default=None, help=f"run folder under --out (default {default_name}); an existing "
                                                "one is refused unless --replace")
    p.add_argument("--replace", action="store_true",
                   help="replace the run folder --name names: the new run is written to a temporary folder beside "
                        "it and swapped in when it ends, so the earlier run stays whole until then")


def run_folder(args, default: str):
    """The RunFolder for --out/--name/--replace (checked now, created when the run first writes)."""
    from hetero.results import RunFolder

    return RunFolder(args.out, args.name, args.replace, default)


def csv_list(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]
