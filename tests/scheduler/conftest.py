"""One Ray session for every scheduler test that needs Ray (starting Ray costs seconds)."""

import pytest


@pytest.fixture(scope="session")
def ray_session():
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=300 * 1024**2)
    yield ray
    ray.shutdown()
