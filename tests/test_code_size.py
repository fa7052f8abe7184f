"""The project's size rules (STYLE.md): no function over 60 lines, no source file over 400, in hetero/, kernels/
and bench/, so each reads at once."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("hetero", "kernels", "bench")
MAX_FUNCTION, MAX_FILE = 60, 400


def sources():
    for folder in FOLDERS:
        yield from sorted((ROOT / folder).rglob("*.py"))


def test_no_function_over_60_lines():
    long = [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in sources()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION
    ]
    assert not long, "split these functions: " + "; ".join(long)


def test_no_source_file_over_400_lines():
    big = [f"{p.relative_to(ROOT)} ({n} lines)" for p in sources() if (n := len(p.read_text().splitlines())) > MAX_FILE]
    assert not big, "split these files: " + "; ".join(big)
