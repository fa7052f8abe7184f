"""Errors a user can act on. Each message is one line naming the bad value and what would be valid."""


class HeteroError(ValueError):
    """Bad input or an unusable device: the CLI prints it as one line and exits 2."""


class BackendUnavailable(HeteroError):
    """A backend that cannot run here; the message says why (not installed, no device, ...)."""


def choices(kind: str, value, valid) -> HeteroError:
    """'unknown backend 'cuda'; available: numpy, numba' in one place so every message reads the same."""
    return HeteroError(f"unknown {kind} {value!r}; valid: {', '.join(map(str, valid)) or '(none)'}")
