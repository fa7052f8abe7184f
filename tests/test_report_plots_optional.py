"""The README's commands work with the README's installs: the first install brings matplotlib, and a report
on a machine without it still prints and writes its tables, says once that plots were skipped, and leaves no
empty plots/ folder."""

import re
import sys
from pathlib import Path

import pytest

from bench.report import cli
from hetero.backends import registry
from hetero.results import metadata, write_metadata, write_rows
from hetero.runner import COLUMNS, RunConfig, run
from hetero.workloads import get

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def results(tmp_path):
    rows = run(
        get("matmul").preset_cases("quick")[:1],
        [registry.get("numpy"), registry.get("null")],
        RunConfig(budget_s=0.01, warmup_s=0),
    )
    write_rows(tmp_path / "cpu-run" / "bench.csv", rows, COLUMNS)
    write_metadata(tmp_path / "cpu-run" / "meta.json", metadata({}, ["test"]))
    return tmp_path


def test_report_without_matplotlib_skips_plots_with_one_note(results, capsys, monkeypatch):
    for mod in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    assert cli(["--results", str(results)]) == 0
    out, err = capsys.readouterr()
    assert "GFLOP/s (speedup vs numpy)" in out
    notes = [line for line in err.splitlines() if "matplotlib" in line]
    assert len(notes) == 1 and "skipped" in notes[0], err
    assert (results / "README.md").exists() and not (results / "plots").exists()


def test_no_plots_creates_no_plots_folder(results):
    assert cli(["--results", str(results), "--no-plots"]) == 0
    assert not (results / "plots").exists()


def test_quickstart_install_brings_matplotlib():
    """bench.report's plots are one of its main outputs: matplotlib is a core dependency, not an extra."""
    text = (ROOT / "pyproject.toml").read_text()
    core = re.search(r"^dependencies = \[(.*?)^\]", text, re.S | re.M).group(1)
    assert re.search(r'^\s*"matplotlib\b', core, re.M), core
