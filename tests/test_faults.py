"""Fault injection: `bench run` killed with SIGKILL at random moments, then run again, must leave exactly
the table an uninterrupted run leaves (every other row untouched, no half-written file)."""
import os
import random
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from fixtures_tasks import tiny_checkpoints

VOLATILE = ["seconds", "timestamp", "details"]  # wall times differ between runs; the numbers must not


def _run(args, env):
    return subprocess.Popen([sys.executable, "-m", "bench.cli", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


@pytest.mark.slow
def test_bench_run_killed_at_random_moments_then_rerun_equals_an_uninterrupted_run(tmp_path):
    _, d = tiny_checkpoints(tmp_path / "ckpt", nc=1)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    base = ["run", "svm", "--dataset", "digits", "--ckpt", str(d), "--device", "cpu", "--set", "c_grid=0.001,0.01",
            "--set", "val_size=60", "--set", "baselines=none", "--subset", "300"]
    other = ["--seed", "1"]  # a second run's rows, already in the table, must survive every kill
    clean = tmp_path / "clean"
    for extra in (other, []):
        t0 = time.perf_counter()
        assert _run([*base, *extra, "--results", str(clean)], env).wait() == 0
    took = time.perf_counter() - t0
    expected = pd.read_csv(clean / "svm.csv").drop(columns=VOLATILE)

    rng = random.Random(0)
    for attempt in range(3):
        results = tmp_path / f"killed{attempt}"
        assert _run([*base, *other, "--results", str(results)], env).wait() == 0
        proc = _run([*base, "--results", str(results)], env)
        time.sleep(rng.uniform(0.3, 1.0) * took)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        table = pd.read_csv(results / "svm.csv")  # never half-written: it parses, the other run's rows are there
        assert (table.seed == 1).sum() == (expected.seed == 1).sum()
        assert _run([*base, "--results", str(results)], env).wait() == 0
        got = pd.read_csv(results / "svm.csv").drop(columns=VOLATILE)
        pd.testing.assert_frame_equal(got.sort_values(["seed", "model", "metric"]).reset_index(drop=True),
                                      expected.sort_values(["seed", "model", "metric"]).reset_index(drop=True))
        assert not list(results.glob(".*.tmp")), "a temp file outlived the next write"
