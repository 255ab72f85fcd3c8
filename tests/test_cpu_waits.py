"""bench/cpu_waits.py: a server process's waits for a CPU, and what ran meanwhile, read from
``perf sched timehist``."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "cpu_waits.py"
sys.path.insert(0, str(SCRIPT.parent))
from cpu_waits import by_window, read  # noqa: E402

# two server processes (python[100], python[101]), another python task, a kernel thread; each
# line: when a run ended, its CPU, the task, wait time, scheduling delay, run time (ms)
TRACE = """\
           time    cpu  task name                       wait time  sch delay   run time
                        [tid/pid]                          (msec)     (msec)     (msec)
--------------- ------  ------------------------------  ---------  ---------  ---------
   10.004000 [0000]  python[100]                         0.000      0.000      4.000
   10.005000 [0001]  <idle>                              0.000      0.000      5.000
   10.006000 [0000]  python[101]                         0.000      3.000      2.000
   10.010000 [0000]  <idle>                              0.000      0.000      4.000
   10.010100 [0000]  python[200/199]                     0.000      0.000      0.100
   10.012000 [0001]  kdamond.0[83]                       0.000      0.000      2.000
   10.013500 [0001]  python[100]                         0.000      1.500      1.500
   10.014000 [0000]  <idle>                              0.000      0.000      3.900
"""


def run(path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), str(path), *args],
                          capture_output=True, text=True)


def test_waits_are_blamed_on_what_ran_meanwhile(tmp_path):
    trace = tmp_path / "sched.txt"
    trace.write_text(TRACE)
    done = run(trace)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("server tasks python[100], python[101];")
    assert lines[1] == "waits for a CPU over 1 ms: 2, 4.5 ms in all"
    # the first waited 3 ms behind the other server process while CPU 1 idled; the second
    # 1.5 ms behind the kernel thread
    assert lines[2] == "  on the CPU waited for, ms: server 3.0, kdamond.0 1.5"
    assert lines[3] == "  on the other CPUs, ms: <idle> 4.5"
    assert lines[4] == "kernel threads' runs over 1 ms: kdamond.0 1"


def test_threshold_and_tasks(tmp_path):
    trace = tmp_path / "sched.txt"
    trace.write_text(TRACE)
    done = run(trace, "--tasks", "python[100]", "--threshold-ms", "2")
    assert "waits for a CPU over 2 ms: 0, 0.0 ms in all" in done.stdout
    assert "kernel threads' runs over 2 ms: none" in done.stdout


def test_a_file_without_a_trace_is_refused(tmp_path):
    trace = tmp_path / "empty.txt"
    trace.write_text("not a trace\n")
    done = run(trace)
    assert done.returncode == 1 and "no perf sched timehist lines" in done.stderr
    done = run(trace.with_name("missing.txt"))
    assert done.returncode == 1 and "No such file" in done.stderr


def test_time_on_each_cpu_window_by_window(tmp_path):
    trace = tmp_path / "sched.txt"
    trace.write_text(TRACE)
    windows = by_window(read(trace), ["python[100]", "python[101]"], 10.0, 10.014, width=0.005)
    assert len(windows) == 2
    ms = [{key: round(value * 1e3, 6) for key, value in w.items()} for w in windows]
    assert ms[0] == {("python[100]", 0): 4.0, ("python[101]", 0): 1.0, ("<idle>", 1): 5.0}
    # the other python task is not counted; CPU 0 idles from 10.006
    assert ms[1] == {("python[101]", 0): 1.0, ("<idle>", 0): 4.0}


def test_only_the_load_generators_last_run_is_looked_at(tmp_path):
    trace = tmp_path / "sched.txt"
    # the client ran from 10.006 to 10.015: from 2 ms in, only the second wait (at 10.012) counts
    trace.write_text(TRACE + "   10.015000 [0001]  loadgen[300]    0.000      0.000      9.000\n")
    done = run(trace, "--during", "loadgen", "--skip", "0.002")
    assert done.returncode == 0, done.stderr
    assert "waits for a CPU over 1 ms: 1, 1.5 ms in all" in done.stdout
    done = run(trace, "--during", "wrk")
    assert done.returncode == 1 and "no task named 'wrk' in the trace" in done.stderr
