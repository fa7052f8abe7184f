"""bench.report over result folders: tables, README regeneration, corrupt files named and skipped."""
import pytest

from bench.report import cli
from hetero.backends import registry
from hetero.runner import COLUMNS, RunConfig, run
from hetero.results import metadata, write_metadata, write_rows
from hetero.workloads import get


@pytest.fixture
def results(tmp_path):
    cases = get("matmul").preset_cases("quick")
    backends = [registry.get("numpy"), registry.get("null")]
    rows = run(cases, backends, RunConfig(budget_s=0.01, warmup_s=0))
    write_rows(tmp_path / "cpu-run" / "bench.csv", rows, COLUMNS)
    write_metadata(tmp_path / "cpu-run" / "meta.json", metadata({}, ["test"]))
    return tmp_path


def test_report_writes_readme_with_tables_and_modeled_marks(results, capsys):
    pytest.importorskip("matplotlib")
    assert cli(["--results", str(results)]) == 0
    readme = (results / "README.md").read_text()
    assert "## cpu-run" in readme and "Machine:" in readme and "cores" in readme
    assert "| numpy |" in readme and "*" in readme.split("| null |")[1].splitlines()[0]  # null is modeled
    assert list((results / "plots").glob("*.png"))
    assert "GFLOP/s (speedup vs numpy)" in capsys.readouterr().out


def test_corrupt_file_is_named_and_the_rest_reported(results, capsys):
    (results / "broken").mkdir()
    (results / "broken" / "bench.csv").write_text("workload,shape\nmatmul\n")
    assert cli(["--results", str(results), "--no-write"]) == 0
    assert "corrupt results file" in capsys.readouterr().err


def test_missing_folder_is_exit_2(tmp_path, capsys):
    assert cli(["--results", str(tmp_path / "nope")]) == 2
    assert "no results folder" in capsys.readouterr().err
