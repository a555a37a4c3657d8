"""What every speed script shares: the machine it ran on, peak memory, CPU time, and ``Figure``, one
row of the dashboard (``run_all.py``).

Each script keeps its own detailed Markdown tables for its own command line, and also exposes
``figures(args) -> list[Figure]`` so that ``run_all.py`` can run it with quick settings and print every
goal of the suite in one table. A figure is a measurement next to the reference measured in the same
run, never a number remembered from elsewhere: a ratio between two runs of the same process is what
survives a change of machine.
"""
from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import dataclass

# /proc/cpuinfo flag -> what the dashboard calls it; bf16 is native only with avx512_bf16 or AMX.
CPU_FLAGS = {"avx2": "AVX2", "avx512f": "AVX-512", "avx512_bf16": "AVX-512 BF16", "amx_bf16": "AMX"}


@dataclass(frozen=True)
class Figure:
    """One measured figure: ours beside its reference, the ratio that the goal is about, and whether
    the goal is met (None when the figure has no goal, only a reference)."""
    name: str
    ours: str
    reference: str
    ratio: float | None
    goal: str
    met: bool | None

    def markdown(self) -> str:
        ratio = "" if self.ratio is None else f"{self.ratio:.2f}x"
        met = {None: "", True: "met", False: "**missed**"}[self.met]
        return f"| {self.name} | {self.ours} | {self.reference} | {ratio} | {self.goal} | {met} |"


HEADER = "| figure | ours | reference | ratio | goal | met |\n| --- | ---: | ---: | ---: | --- | --- |"


def cpu_model() -> str:
    info = _cpuinfo()
    return info.get("model name", platform.processor() or "unknown")


def cpu_flags() -> str:
    """The instruction sets that decide our speed, as the dashboard names them (AVX2, AVX-512, ...)."""
    flags = set(_cpuinfo().get("flags", "").split())
    return ", ".join(name for flag, name in CPU_FLAGS.items() if flag in flags) or "none of " + ", ".join(CPU_FLAGS.values())


def machine() -> str:
    """One line naming the machine: CPU model, logical cores, instruction sets, torch."""
    import os

    import torch
    return (f"{cpu_model()}, {os.cpu_count()} logical cores, {cpu_flags()}; torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads")


def peak_rss_mib() -> float:
    """This process's peak resident memory (``ru_maxrss``, KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def children_peak_rss_mib() -> float:
    """The largest peak resident memory of any waited-for child process."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def cpu_seconds() -> float:
    """CPU time of this process and its waited-for children: over threads x wall time, the share of
    the cores a run had (far below 100% means other processes shared them)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@dataclass(frozen=True)
class Child:
    """What a finished child process cost: wall seconds, CPU seconds and peak memory, each counting the
    processes it started and waited for (e.g. its data-loader workers)."""
    seconds: float
    cpu_seconds: float
    peak_rss_mib: float  # the largest peak RSS among the child and its own children (``ru_maxrss``)

    def cpu_use(self) -> float:
        """CPU time over cores x wall time: far below 100% means others shared the cores, or it waited."""
        return self.cpu_seconds / (self.seconds * (os.cpu_count() or 1))


def run_child(cmd: list[str], env: dict[str, str] | None = None) -> Child:
    """Run ``cmd`` to its end (its output on our stderr, so that tables on stdout stay clean) and measure it
    with ``wait4``: the rusage of that one child, not of every child this process ever waited for."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=sys.stderr)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    return Child(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo ({} where there is none)."""
    info: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                info[key.strip()] = value.strip()
    except OSError:
        pass
    return info
