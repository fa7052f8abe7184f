"""Result files are created as any other file is: readable by whoever the umask lets read them."""

import os
import stat

import pytest

from hetero.results import atomic_write


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_atomic_write_honours_the_umask(tmp_path, umask_022):
    path = tmp_path / "bench.csv"
    atomic_write(path, "a,b\n1,2\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    # An overwrite keeps the same rule (the temporary file is made with mkstemp's 0600 first).
    atomic_write(path, "a,b\n3,4\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_atomic_write_honours_a_stricter_umask(tmp_path):
    old = os.umask(0o077)
    try:
        atomic_write(tmp_path / "meta.json", "{}\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "meta.json").stat().st_mode) == 0o600
