"""No import cycle among hetero's modules, counting imports inside functions and a package's own __init__.

import-linter's contracts (pyproject.toml, run by .ci/lint-imports) state the layers and forbid cycles between
sibling modules; a cycle between a package and one of its modules (an __init__ that imports the module, and the
module importing the package back) is not between siblings, so this test reads every import itself.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"hetero": ROOT / "hetero", "hetero.kernels": ROOT / "kernels"}  # kernels/ installs as hetero.kernels


def modules() -> dict[str, Path]:
    """Dotted module name -> its file, as installed."""
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package, *parts))] = path
    return found


def imported(name: str, path: Path, known: dict) -> set[str]:
    """The modules of `known` that the module `name` imports: `from pkg import sub` names pkg.sub, `from mod
    import thing` names mod, relative imports resolve against the module's package."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}".rstrip(".")
            subs = {f"{base}.{a.name}" for a in node.names} & known.keys()
            out |= subs or {base}
    return (out & known.keys()) - {name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """A shortest cycle through each module that can reach itself and is on no cycle reported before it."""
    seen, found = set(), []
    for start in sorted(graph):
        if start in seen:
            continue
        paths, frontier = {start: [start]}, [start]
        while frontier and start not in seen:
            nxt = []
            for m in frontier:
                for n in sorted(graph[m]):
                    if n == start:
                        found.append(paths[m] + [start])
                        seen.update(paths[m])
                        break
                    if n not in paths:
                        paths[n] = paths[m] + [n]
                        nxt.append(n)
                if start in seen:
                    break
            frontier = nxt
    return found


def test_finder_sees_a_package_and_its_module_importing_each_other(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("from pkg.a import f\n")
    (tmp_path / "pkg" / "a.py").write_text("def f():\n    from pkg import g\n")
    known = {"pkg": tmp_path / "pkg" / "__init__.py", "pkg.a": tmp_path / "pkg" / "a.py"}
    graph = {name: imported(name, path, known) for name, path in known.items()}
    assert cycles(graph) == [["pkg", "pkg.a", "pkg"]]


def test_hetero_has_no_import_cycle():
    known = modules()
    graph = {name: imported(name, path, known) for name, path in known.items()}
    assert "hetero.kernels.matmul.fpga_matmul" in graph["hetero.kernels.conv2d.fpga_conv2d"]  # the finder reads
    found = [" -> ".join(c) for c in cycles(graph)]
    assert not found, "import cycles (break each so data flows one way):\n" + "\n".join(found)
