"""hetero.devices: a CPU's name tells machines apart (the perf model and result tables key devices by it)."""

import pytest

from hetero import devices


@pytest.mark.parametrize(
    "info, want",
    [
        (
            {"model name": "AMD EPYC", "vendor_id": "AuthenticAMD", "cpu family": "26", "model": "2"},
            "AMD EPYC family 26 model 2",
        ),  # a VM's generic name gets family and model ...
        (
            {"model name": "AMD EPYC", "vendor_id": "AuthenticAMD", "cpu family": "25", "model": "1"},
            "AMD EPYC family 25 model 1",
        ),  # ... so another generation is another device
        (
            {
                "model name": "AMD EPYC 9654 96-Core Processor",
                "vendor_id": "AuthenticAMD",
                "cpu family": "25",
                "model": "17",
            },
            "AMD EPYC 9654 96-Core Processor",
        ),  # a model number already says which
    ],
)
def test_cpu_name_adds_family_and_model_to_a_generic_name(monkeypatch, info, want):
    monkeypatch.setattr(devices, "_cpuinfo", lambda: info)
    assert devices.cpu_name() == want


@pytest.mark.parametrize(
    "family, model, flags, want",
    [
        ("25", "17", "avx2 fma avx512f", (16, 1)),  # AMD family 25 with AVX-512: a 512-bit FMA takes both pipes
        ("26", "2", "avx2 fma avx512f", (16, 2)),  # AMD family 26: two full-width pipes
        ("25", "1", "avx2 fma", (8, 2)),  # AVX2 only: 8 lanes, two pipes
    ],
)
def test_fp32_lanes_know_which_cpus_split_avx512_fmas(monkeypatch, family, model, flags, want):
    info = {"vendor_id": "AuthenticAMD", "cpu family": family, "model": model, "flags": flags}
    monkeypatch.setattr(devices, "_cpuinfo", lambda: info)
    assert devices.fp32_lanes() == want


@pytest.mark.parametrize(
    "flags, want",
    [
        ("avx2 fma avx512f avx512_vnni amx_tile amx_int8", 32.0),  # 1024 tile MACs a cycle over 2 x 16 FMA lanes
        ("avx2 fma avx512f avx512_vnni", 4.0),  # VPDPBUSD: 4 byte products per int32 lane
        ("avx2 fma", 2.0),  # VPMADDWD: 2 int16 products per int32 lane
    ],
)
def test_int8_peak_follows_the_best_int8_instruction(monkeypatch, flags, want):
    info = {"vendor_id": "GenuineIntel", "cpu family": "6", "model": "143", "flags": flags}
    monkeypatch.setattr(devices, "_cpuinfo", lambda: info)
    assert devices.int8_per_fp32()[0] == want


def test_clock_probe_counts_two_fmas_a_cycle_and_sees_a_plausible_clock():
    """The probe's figure is a clock, not a FLOP rate: any real x86 core lands between 0.5 and 7 GHz (a probe
    that counted vector lanes, or missed the FMA fusion, would be off by 2x-16x and leave that range)."""
    from hetero import cpu_probe

    ghz = cpu_probe.clock_ghz(threads=1, seconds=0.1)
    assert ghz and all(0.5 < g < 7.0 for g in ghz)
    bw = cpu_probe.triad_gbps(mib=8, reps=2)
    assert len(bw) == 2 and all(b > 0 for b in bw)


def test_wide_clock_probe_sees_a_plausible_clock():
    """On AVX-512 CPUs, the 512-bit probe's figure is a clock too (off by 16x, it would count lanes)."""
    from hetero import cpu_probe, devices

    lanes, pipes = devices.fp32_lanes()
    if lanes != 16:
        pytest.skip("this CPU has no AVX-512")
    ghz = cpu_probe.wide_clock_ghz(threads=1, pipes=pipes, seconds=0.1)
    assert ghz and all(0.5 < g < 7.0 for g in ghz)


def test_bench_clock_prints_clock_peak_and_bandwidth(capsys):
    from bench import clock

    assert clock.cli(["--quick", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "GHz" in out and "GFLOP/s" in out and "GB/s" in out and "[measured wall clock]" in out


def test_bench_clock_rejects_a_bad_count(capsys):
    from bench import clock

    with pytest.raises(SystemExit) as exc:  # argparse's one line
        clock.cli(["--threads", "0"])
    assert exc.value.code == 2
    assert "argument --threads: '0' is not an integer from 1 to" in capsys.readouterr().err
