"""hetero.devices: a CPU's name tells machines apart (the perf model and result tables key devices by it)."""
import pytest

from hetero import devices


@pytest.mark.parametrize("info, want", [
    ({"model name": "AMD EPYC", "vendor_id": "AuthenticAMD", "cpu family": "26", "model": "2"},
     "AMD EPYC family 26 model 2"),                     # a VM's generic name: Zen 5
    ({"model name": "AMD EPYC", "vendor_id": "AuthenticAMD", "cpu family": "25", "model": "1"},
     "AMD EPYC family 25 model 1"),                     # ... and Zen 3, no longer the same device
    ({"model name": "AMD EPYC 9654 96-Core Processor", "vendor_id": "AuthenticAMD", "cpu family": "25",
      "model": "17"}, "AMD EPYC 9654 96-Core Processor"),   # a model number already says which
])
def test_cpu_name_adds_family_and_model_to_a_generic_name(monkeypatch, info, want):
    monkeypatch.setattr(devices, "_cpuinfo", lambda: info)
    assert devices.cpu_name() == want
