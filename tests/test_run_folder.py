"""The run folder stays in line with checkpoint.pt whatever stopped the process: exports repaired from
the checkpoint, a log without repeated steps, no temporary files of dead writers, an honest last line;
and kill -9 at random moments, then --resume, ends in the files of an uninterrupted run."""
import csv
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from bench.cli import main
from dcgan.checkpoint import read_checkpoint
from dcgan.config import DCGANConfig
from dcgan.fsutil import atomic_write_bytes
from dcgan.train import Trainer, TrainConfig, train

REPO = Path(__file__).resolve().parents[1]
TINY = DCGANConfig(image_size=32, nc=3, ngf=8, ndf=8)


def _cfg(epochs=2, **kw):
    kw = {"subset": 96, "batch_size": 32, "checkpoint_every": 2, **kw}
    return TrainConfig(model=TINY, dataset="synthetic", epochs=epochs, seed=7, **kw)


def _steps(log: Path) -> list[int]:
    with open(log, newline="") as f:
        return [int(r["step"]) for r in csv.DictReader(f)]


def _assert_same_blob(a, b, where=""):
    """Two loaded checkpoints: the same keys, tensors bit for bit, everything else equal."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: {sorted(a)} != {sorted(b)}"
        for k in a:
            _assert_same_blob(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_blob(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _assert_same_exports(run: Path, ref: Path, epochs: int) -> None:
    for name in ("g.pt", "d.pt", *(f"ckpt/epoch{e:03d}_{n}.pt" for e in range(1, epochs + 1) for n in "gd")):
        _assert_same_blob(_load(run / name), _load(ref / name), name)
    for e in range(1, epochs + 1):
        name = f"samples/epoch{e:03d}.png"
        assert np.array_equal(_pixels(run / name), _pixels(ref / name)), name


def test_exports_lost_after_the_epoch_checkpoint_are_rewritten_from_it(tmp_path):
    """A kill between epoch 2's checkpoint and its exports left g.pt/d.pt at epoch 1, no ckpt/epoch002_*
    and samples/epoch002.png from before; --resume said "done" and never wrote them."""
    ref = tmp_path / "ref"
    train(_cfg(epochs=2), ref, device="cpu")

    run = tmp_path / "run"
    train(_cfg(epochs=1), run, device="cpu")
    epoch1 = {name: (run / name).read_bytes() for name in ("g.pt", "d.pt")}
    train(_cfg(epochs=2), run, device="cpu", resume=True)
    for name, data in epoch1.items():  # roll the folder back to the moment of the kill
        (run / name).write_bytes(data)
    for name in ("ckpt/epoch002_g.pt", "ckpt/epoch002_d.pt"):
        (run / name).unlink()
    shutil.copy(run / "samples/epoch001.png", run / "samples/epoch002.png")  # an older picture in its place
    assert read_checkpoint(run / "checkpoint.pt")["step"] == 6

    r = CliRunner().invoke(main, ["train", "--dataset", "synthetic", "--subset", "96", "--image-size", "32",
                                  "--ngf", "8", "--ndf", "8", "--batch-size", "32", "--seed", "7",
                                  "--checkpoint-every", "2", "--epochs", "2", "--device", "cpu",
                                  "--out", str(run), "--resume"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "repaired from" in r.output and "done: 6 steps" in r.output
    _assert_same_exports(run, ref, epochs=2)


def test_a_start_keeps_exactly_one_log_row_per_step_up_to_the_checkpoint(tmp_path):
    """A run that failed before its first checkpoint left log.csv; the next run appended steps 1.. again."""
    class _Fails(Trainer):
        def train_step(self, real):
            if self.step == 2:
                raise RuntimeError("power cut")
            return super().train_step(real)

    run = tmp_path / "run"
    with pytest.raises(RuntimeError):
        _Fails(_cfg(epochs=2, checkpoint_every=100), run, "cpu").fit()
    assert _steps(run / "log.csv") == [1, 2] and not (run / "checkpoint.pt").exists()
    t = train(_cfg(epochs=2, checkpoint_every=100), run, device="cpu")
    assert _steps(run / "log.csv") == list(range(1, t.step + 1))

    # a log cut short mid-row, with steps past the checkpoint (as a kill leaves it)
    with open(run / "log.csv", "a") as f:
        f.write("7,3,0.5,0.7,0.5,0.5,0.5,0.1\n8,3,0.5")
    train(_cfg(epochs=3, checkpoint_every=100), run, device="cpu", resume=True)
    assert _steps(run / "log.csv") == list(range(1, 10))


def test_resume_without_a_checkpoint_warns_naming_the_folder(tmp_path):
    run = tmp_path / "empty"
    with pytest.warns(UserWarning, match=f"--resume: no checkpoint in {run}, starting a new run"):
        t = train(_cfg(epochs=1), run, device="cpu", resume=True)
    assert t.step == 3


def test_max_steps_names_only_files_that_hold_the_state_it_stopped_at(tmp_path):
    """--max-steps inside an epoch printed the paths of g.pt and d.pt, missing or from an earlier epoch."""
    run = tmp_path / "run"
    args = ["train", "--dataset", "synthetic", "--subset", "96", "--image-size", "32", "--ngf", "8", "--ndf", "8",
            "--batch-size", "32", "--epochs", "2", "--device", "cpu", "--out", str(run)]
    r = CliRunner().invoke(main, [*args, "--max-steps", "2"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert r.output.strip() == (f"stopped at step 2, 2 of 3 steps into epoch 1: training state in "
                                f"{run / 'checkpoint.pt'} (continue with --resume); log {run / 'log.csv'}")
    r = CliRunner().invoke(main, [*args, "--max-steps", "3", "--resume"], catch_exceptions=False)
    assert r.output.strip().endswith(f"stopped after epoch 1 of 2 (3 steps; continue with --resume); checkpoints "
                                     f"{run / 'g.pt'}, {run / 'd.pt'}; samples in {run / 'samples'}; "
                                     f"log {run / 'log.csv'}")
    # a limit already reached trains no further step
    r = CliRunner().invoke(main, [*args, "--max-steps", "1", "--resume"], catch_exceptions=False)
    assert r.exit_code == 0 and read_checkpoint(run / "checkpoint.pt")["step"] == 3
    assert _steps(run / "log.csv") == [1, 2, 3]


_WRITER = """
import sys, time
from dcgan.fsutil import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"half a checkpoint")
    print("writing", flush=True)
    time.sleep(600)
"""


def test_temp_files_of_a_killed_writer_are_removed_by_the_next_write(tmp_path):
    """kill -9 during a write left .checkpoint.pt.*.tmp behind for good (6.9 MB each)."""
    target = tmp_path / "checkpoint.pt"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(target)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.stdout.readline().strip() == "writing"
    live = subprocess.Popen([sys.executable, "-c", _WRITER, str(target)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert live.stdout.readline().strip() == "writing"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        temps = sorted(p.name for p in tmp_path.glob(".checkpoint.pt.*.tmp"))
        assert len(temps) == 2 and all(f".{proc.pid}." in t or f".{live.pid}." in t for t in temps), temps
        atomic_write_bytes(target, b"a whole checkpoint")
        left = [p.name for p in tmp_path.glob(".checkpoint.pt.*.tmp")]
        assert len(left) == 1 and f".{live.pid}." in left[0], left  # a live writer's file is left alone
        assert target.read_bytes() == b"a whole checkpoint"
    finally:
        live.kill()
        live.wait()

    # a killed writer of a file no later write touches again: a training start sweeps its folder
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(run / "samples" / "epoch009.png")],
                            stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(list(run.rglob("*.tmp"))) == 1
    train(_cfg(epochs=1), run, device="cpu", max_steps=1)
    assert not list(run.rglob("*.tmp"))


# ---- kill -9 at random moments --------------------------------------------------------------------

CLI_TRAIN = [sys.executable, "-m", "bench.cli", "train", "--dataset", "synthetic", "--image-size", "32", "--ngf", "8",
             "--ndf", "8", "--subset", "64", "--batch-size", "16", "--epochs", "3", "--checkpoint-every", "2",
             "--device", "cpu"]
STEPS = 12  # 3 epochs of 64 // 16


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def _log_rows(log: Path) -> list[dict]:
    if not log.exists():
        return []
    with open(log, newline="") as f:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(f)]


def _last_logged_step(log: Path) -> int:
    """The last step in the log as it is being appended to (a row may be half written)."""
    return max((int(r["step"]) for r in _log_rows(log) if (r.get("step") or "").isdigit()), default=0)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    proc = subprocess.run([*CLI_TRAIN, "--out", str(out)], env=_env(), cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_resume_on_an_empty_folder_warns_on_stderr(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.run([*CLI_TRAIN, "--max-steps", "1", "--resume", "--out", str(run)], env=_env(), cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"warning: --resume: no checkpoint in {run}, starting a new run there" in proc.stderr.splitlines()


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kill_9_at_random_moments_then_resume_ends_like_an_uninterrupted_run(tmp_path, uninterrupted, seed):
    """Each launch (always with --resume) is killed with SIGKILL once the log reaches a random step plus a
    random delay, which lands anywhere: in start-up, mid-step, inside a checkpoint or an export write;
    after three kills the run is resumed to the end. The folder must then equal the uninterrupted run's."""
    rng = random.Random(seed)
    run = tmp_path / "run"
    kills = 0
    while True:
        proc = subprocess.Popen([*CLI_TRAIN, "--resume", "--out", str(run)], env=_env(), cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if kills < 3:
            at_step, delay = rng.randint(1, STEPS), rng.uniform(0, 0.5)
            while proc.poll() is None and _last_logged_step(run / "log.csv") < at_step:
                time.sleep(0.01)
            time.sleep(delay)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
        _, err = proc.communicate(timeout=600)
        if proc.returncode == 0:
            break
        assert proc.returncode == -signal.SIGKILL, err[-3000:]

    ref_ckpt, ckpt = _load(uninterrupted / "checkpoint.pt"), _load(run / "checkpoint.pt")
    for key in ("G", "D", "optG", "optD", "step", "noise_rng", "torch_rng", "train_config", "config"):
        _assert_same_blob(ckpt[key], ref_ckpt[key], key)
    _assert_same_exports(run, uninterrupted, epochs=3)
    rows = _log_rows(run / "log.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, STEPS + 1))
    assert rows == _log_rows(uninterrupted / "log.csv")
    assert not list(run.rglob("*.tmp")), list(run.rglob("*.tmp"))
