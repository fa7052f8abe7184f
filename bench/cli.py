"""What every bench command shares: a parser whose errors are one line, and a main() that turns HeteroError
into that same one line with exit status 2 instead of a traceback."""
from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Callable

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


def csv_list(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


# argparse `type=` functions: an out-of-range number is one line naming the value and the valid range, exit 2.
def _number(kind, text: str, ok, valid: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {valid}") from None
    if not (math.isfinite(value) and ok(value)):
        raise argparse.ArgumentTypeError(f"{text!r} is not {valid}")
    return value


def positive_float(text: str) -> float:
    return _number(float, text, lambda v: v > 0, "a finite number > 0")


def nonneg_float(text: str) -> float:
    return _number(float, text, lambda v: v >= 0, "a finite number >= 0")


def positive_int(text: str) -> int:
    return _number(int, text, lambda v: v >= 1, "an integer >= 1")


def nonneg_int(text: str) -> int:
    return _number(int, text, lambda v: v >= 0, "an integer >= 0")


def thread_count(text: str) -> int:
    """1 .. this machine's logical CPUs: more threads than CPUs would be recorded but never run."""
    cpus = os.cpu_count() or 1
    return _number(int, text, lambda v: 1 <= v <= cpus, f"an integer from 1 to {cpus} (this machine's CPUs)")
