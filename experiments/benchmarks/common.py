"""Shared pieces of the benchmarks: result rows, timing, peak memory, machine info, table."""

from __future__ import annotations

import dataclasses
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

MEMORY_NOTE = (
    "peak RSS of the benchmark's own process (resource.getrusage ru_maxrss: interpreter, "
    "imports and data included)"
)


@dataclasses.dataclass
class Row:
    """One line of the table. ``rate`` = events per second; ``peers`` maps a peer's name to
    its events per second measured in the same run (``None``: not installed / skipped)."""

    name: str
    events: int
    seconds: float
    unit: str = "rounds"
    peers: dict[str, float | None] = dataclasses.field(default_factory=dict)
    target: str = ""
    met: bool | None = None
    notes: str = ""
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    peak_rss_mib: float | None = None

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["rate"] = self.rate
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Row:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in fields})


def best_time(fn: Callable[..., Any], repeats: int = 3, setup: Callable[[], Any] | None = None):
    """Smallest wall time of ``repeats`` calls (the machine is shared: the best run is the one
    least disturbed); returns ``(seconds, last result)``. ``setup`` runs untimed before each
    call and its result is passed to ``fn``."""
    best, result = float("inf"), None
    for _ in range(max(1, repeats)):
        arg = setup() if setup is not None else None
        t0 = time.perf_counter()
        result = fn(arg) if setup is not None else fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def peak_rss_mib() -> float:
    """This process's peak resident set size so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def machine_info() -> dict[str, str]:
    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": str(os.cpu_count()),
    }
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as fh:
            kib = int(fh.readline().split()[1])
            info["memory"] = f"{kib / 2**20:.1f} GiB"
        info["load average (start)"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        pass
    import numba
    import numpy
    import vowpalwabbit

    info["numpy / numba / vowpalwabbit"] = (
        f"{numpy.__version__} / {numba.__version__} / {vowpalwabbit.__version__}"
    )
    return info


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True)
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _fmt_rate(x: float | None) -> str:
    if x is None:
        return "—"
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k"
    return f"{x:.0f}"


def table(rows: list[Row]) -> str:
    """Markdown table: throughput, peak RSS and the ratio to each peer run alongside."""
    head = (
        "| benchmark | events | time (s) | events/s | peak RSS (MiB) | peer: events/s "
        "(ours ÷ peer) | target | met |\n"
        "|---|---:|---:|---:|---:|---|---|---|\n"
    )
    lines = []
    for r in rows:
        peers = "; ".join(
            f"{name}: {_fmt_rate(v)} ({r.rate / v:.2f}×)" if v else f"{name}: not run"
            for name, v in r.peers.items()
        )
        met = "—" if r.met is None else ("yes" if r.met else "**no**")
        rss = "—" if r.peak_rss_mib is None else f"{r.peak_rss_mib:.0f}"
        lines.append(
            f"| {r.name} | {r.events:,} {r.unit} | {r.seconds:.3f} | {_fmt_rate(r.rate)} | "
            f"{rss} | {peers or '—'} | {r.target or '—'} | {met} |"
        )
    notes = [f"- **{r.name}**: {r.notes}" for r in rows if r.notes]
    return head + "\n".join(lines) + ("\n\nNotes:\n" + "\n".join(notes) if notes else "")


def python_exe() -> str:
    return sys.executable
