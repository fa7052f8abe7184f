"""CUDA C text as the cupy launchers hand it to NVRTC: their #defines, the shared PTX helpers (mma_ptx.cuh), then
the kernel file. NVRTC gets no include path, so the helpers are pasted in; the host emulation in tests/ pastes its
own definitions of the same functions in their place."""

from __future__ import annotations

from pathlib import Path

HELPERS = Path(__file__).with_name("mma_ptx.cuh")


def defines(tuning: dict) -> str:
    """A launcher's tuning as #define lines, which the kernel's #ifndef defaults yield to."""
    return "".join(f"#define {k} {v}\n" for k, v in tuning.items())


def text(kernel: Path, tuning: dict, helpers: str | None = None) -> str:
    """#defines + helpers (mma_ptx.cuh unless given) + the kernel file's text."""
    return defines(tuning) + (HELPERS.read_text() if helpers is None else helpers) + "\n" + kernel.read_text()
