"""Where the server's waits for a CPU go: reads ``perf sched timehist`` and says, for each wait
of a server process longer than a threshold (woken, runnable, not yet running), what ran on the
CPU it waited for and on the other CPUs meanwhile; and which kernel threads ran that long
without a break (on a kernel without preemption, nothing else runs on their CPU meanwhile).

    perf sched record -a -o sched.data -- sleep 42 &   # around a run of bench/serve_load.py
    python bench/serve_load.py --artifacts artifacts/tt5 --workers 2 --rates 800,1000 \\
        --seconds 10 --in-process-requests 1000 --batches ""
    perf sched timehist -i sched.data > sched.txt
    python bench/cpu_waits.py sched.txt --during loadgen

The server processes are the two tasks named ``python`` with the most CPU time (``--tasks``
names others); ``--during loadgen`` looks only at the last client run (the last rate), from
``--skip`` seconds after it began, as ``serve_load.py`` counts it.
"""

from __future__ import annotations

import argparse
import bisect
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

LINE = re.compile(r"\s*([\d.]+)\s+\[(\d+)\]\s+(.+?)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$")
KERNEL_THREAD = re.compile(  # named as the kernel names its own threads
    r"^(kdamond|kworker|ksoftirqd|kswapd|khugepaged|kcompactd|rcu_|migration)")


@dataclass(frozen=True)
class Run:
    """One stretch of a task on a CPU, as ``perf sched timehist`` prints it (times in s)."""

    end: float
    cpu: int
    task: str  # "comm[tid]" or "comm[tid/pid]"
    delay: float  # from its wake-up to this run
    seconds: float

    @property
    def start(self) -> float:
        return self.end - self.seconds

    @property
    def command(self) -> str:
        return self.task.split("[")[0]


def read(path: Path) -> list[Run]:
    try:
        text = path.read_text()
    except OSError as err:
        raise SystemExit(f"{path}: {err.strerror}") from None
    runs = []
    for line in text.splitlines():
        match = LINE.match(line)
        if match:
            end, cpu, task, _, delay, seconds = match.groups()
            runs.append(Run(float(end), int(cpu), task.strip(), float(delay) / 1e3,
                            float(seconds) / 1e3))
    return runs


def busiest(runs: list[Run], command: str, n: int) -> list[str]:
    """The ``n`` tasks of ``command`` with the most CPU time."""
    spent: Counter[str] = Counter()
    for run in runs:
        if run.command == command:
            spent[run.task] += run.seconds
    return [task for task, _ in spent.most_common(n)]


def window(runs: list[Run], command: str, skip: float) -> tuple[float, float]:
    """From ``skip`` s after the last-started task of ``command`` began to its last run."""
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    for run in runs:
        if run.command == command:
            first.setdefault(run.task, run.start)
            last[run.task] = run.end
    if not first:
        raise SystemExit(f"no task named {command!r} in the trace")
    task = max(first, key=first.get)
    return first[task] + skip, last[task]


def blame(runs: list[Run], tasks: list[str], threshold: float, start: float, end: float
          ) -> tuple[int, float, Counter[str], Counter[str]]:
    """The waits of ``tasks`` over ``threshold`` s that ended between ``start`` and ``end``:
    how many, their total, and the seconds each command ran meanwhile on the CPU waited for
    and on the others (``server`` for the server's tasks, ``<idle>`` where the CPU ran
    nothing)."""
    by_cpu: dict[int, list[Run]] = defaultdict(list)
    for run in runs:  # timehist prints runs as they end
        by_cpu[run.cpu].append(run)
    ends = {cpu: [run.end for run in stretches] for cpu, stretches in by_cpu.items()}
    same: Counter[str] = Counter()
    other: Counter[str] = Counter()
    count, total = 0, 0.0
    for wait in runs:
        if wait.task not in tasks or wait.delay <= threshold or not start <= wait.start <= end:
            continue
        count, total = count + 1, total + wait.delay
        lo, hi = wait.start - wait.delay, wait.start
        for cpu, stretches in by_cpu.items():
            for i in range(bisect.bisect_right(ends[cpu], lo), len(stretches)):
                run = stretches[i]
                if run.start >= hi:
                    break
                overlap = min(run.end, hi) - max(run.start, lo)
                if overlap > 0 and run is not wait:
                    name = "server" if run.task in tasks else run.command
                    (same if cpu == wait.cpu else other)[name] += overlap
    return count, total, same, other


def by_window(runs: list[Run], tasks: list[str], start: float, end: float,
              width: float = 0.1) -> list[dict[tuple[str, int], float]]:
    """Per ``width`` s from ``start``: the seconds each of ``tasks`` ran on each CPU, and each
    CPU's idle time (keys (task or "<idle>", CPU))."""
    windows: list[dict[tuple[str, int], float]] = [
        defaultdict(float) for _ in range(int((end - start) / width))]
    for run in runs:
        if run.task not in tasks and run.command != "<idle>":
            continue
        first = max(int((run.start - start) // width), 0)
        for k in range(first, min(int((run.end - start) // width) + 1, len(windows))):
            lo = start + k * width
            overlap = min(run.end, lo + width) - max(run.start, lo)
            if overlap > 0:
                windows[k][(run.task if run.task in tasks else "<idle>", run.cpu)] += overlap
    return windows


def long_kernel_runs(runs: list[Run], threshold: float) -> Counter[str]:
    """Runs over ``threshold`` s of kernel threads."""
    return Counter(run.command for run in runs
                   if run.seconds > threshold and KERNEL_THREAD.match(run.command))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("timehist", type=Path, help="output of perf sched timehist")
    parser.add_argument("--tasks", help="the server's tasks, comma-separated as timehist names "
                        "them (default: the two busiest named python)")
    parser.add_argument("--during", help="only the last run of this command (e.g. loadgen)")
    parser.add_argument("--skip", type=float, default=2.0, help="seconds of it left out first")
    parser.add_argument("--threshold-ms", type=float, default=1.0)
    parser.add_argument("--windows", action="store_true",
                        help="also each 100 ms: where each server task ran, and each CPU's idle")
    args = parser.parse_args()
    runs = read(args.timehist)
    if not runs:
        raise SystemExit(f"{args.timehist}: no perf sched timehist lines")
    tasks = args.tasks.split(",") if args.tasks else busiest(runs, "python", 2)
    start, end = (window(runs, args.during, args.skip) if args.during
                  else (min(r.start for r in runs), max(r.end for r in runs)))
    threshold = args.threshold_ms / 1e3
    count, total, same, other = blame(runs, tasks, threshold, start, end)
    in_window = [r for r in runs if start <= r.start <= end]
    print(f"server tasks {', '.join(tasks)}; {end - start:.1f} s looked at")
    print(f"waits for a CPU over {args.threshold_ms:g} ms: {count}, {total * 1e3:.1f} ms in all")
    for label, spent in (("on the CPU waited for", same), ("on the other CPUs", other)):
        print(f"  {label}, ms: " + ", ".join(f"{name} {seconds * 1e3:.1f}"
                                             for name, seconds in spent.most_common(6)))
    kernel = long_kernel_runs(in_window, threshold)
    print(f"kernel threads' runs over {args.threshold_ms:g} ms: "
          + (", ".join(f"{name} {n}" for name, n in kernel.most_common()) or "none"))
    if args.windows:
        print("ms in each 100 ms window (task or <idle> @ CPU):")
        for k, spent in enumerate(by_window(runs, tasks, start, end)):
            print(f"  {k:3d} " + ", ".join(f"{name}@{cpu} {seconds * 1e3:.0f}" for
                                          (name, cpu), seconds in sorted(spent.items())))


if __name__ == "__main__":
    main()
