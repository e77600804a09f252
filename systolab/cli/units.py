"""Numbers in the units a reader expects, for the commands' text output (``--json`` keeps
the raw values: seconds and bytes)."""
from __future__ import annotations

import math

_TIME = ((1e-9, "ns"), (1e-6, "µs"), (1e-3, "ms"), (1.0, "s"))
_BYTES = ((1e3, "kB"), (1e6, "MB"), (1e9, "GB"), (1e12, "TB"), (1e15, "PB"))


def human_seconds(seconds: float) -> str:
    """``seconds`` to three significant figures in ns, µs, ms, s, min, h or days."""
    if not math.isfinite(seconds):
        return str(seconds)
    if seconds >= 120:
        spans: tuple[tuple[float, float, str], ...] = ((7200.0, 60.0, "min"), (2 * 86400.0, 3600.0, "h"),
                                                       (math.inf, 86400.0, "days"))
        for limit, size, unit in spans:
            if seconds < limit:
                return f"{seconds / size:.3g} {unit}"
    if seconds == 0:
        return "0 s"
    size, unit = next(((s, u) for s, u in reversed(_TIME) if abs(seconds) >= s), _TIME[0])
    return f"{seconds / size:.3g} {unit}"


def human_bytes(n: float) -> str:
    """``n`` bytes in B, kB, MB, GB, TB or PB (powers of 1000), three significant figures."""
    if not math.isfinite(n) or abs(n) < 1000:
        return f"{n:g} B"
    size, unit = next(((s, u) for s, u in reversed(_BYTES) if abs(n) >= s))
    return f"{n / size:.3g} {unit}"


__all__ = ["human_bytes", "human_seconds"]
