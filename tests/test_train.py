"""Training: the run folder, exact resume after a clean stop or a kill, and DDP on two CPU processes, for
the unconditional and the conditional DCGAN and SRGAN's gan stage."""
import csv
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dcgan.checkpoint import load_net, read_checkpoint
from dcgan.config import DCGANConfig
from dcgan.errors import ConfigError
from dcgan.models import config_from_dict, family_of
from dcgan.models.cdcgan import CDCGANConfig
from dcgan.models.srgan import SRGANConfig
from dcgan.models.stargan import StarGANConfig
from dcgan.train import Trainer, TrainConfig, train

TINY = DCGANConfig(image_size=32, nc=3, ngf=8, ndf=8)
# a conditional G and D whose labels reach every layer (concat) or the output (projection)
TINY_C = CDCGANConfig(image_size=32, nc=3, ngf=8, ndf=8, g_cond="concat", d_cond="projection")
# SRGAN's second stage (G and D), on random 16 px crops of the 32 px images
TINY_SR = SRGANConfig(image_size=32, nc=3, ngf=8, ndf=8, blocks=2, scale=4, hr_size=16, stage="gan")
TINY_ST = StarGANConfig(image_size=32, nc=3, ngf=8, ndf=8, res_blocks=1, domains=("disc", "square", "ring", "cross"),
                        n_critic=2)


def _cfg(epochs=2, model=TINY, **kw):
    return TrainConfig(model=model, dataset="synthetic", subset=96, epochs=epochs, batch_size=32, seed=7,
                       checkpoint_every=2, **kw)


def _weights(trainer):
    return {**{f"G.{k}": v for k, v in trainer.G.state_dict().items()},
            **{f"D.{k}": v for k, v in trainer.D.state_dict().items()}}


def _assert_same(a, b):
    assert a.keys() == b.keys()
    diff = [k for k in a if not torch.equal(a[k], b[k])]
    assert not diff, f"weights differ: {diff[:5]}"


class _Killed(Exception):
    pass


class _KilledAfter(Trainer):
    """Dies (without a checkpoint) after ``kill_at`` steps, like a process killed mid-epoch."""

    kill_at = 5

    def train_step(self, *batch):
        if self.step == self.kill_at:
            raise _Killed
        return super().train_step(*batch)


@pytest.mark.parametrize("model", [TINY, TINY_C, TINY_SR, TINY_ST], ids=["dcgan", "cdcgan", "srgan", "stargan"])
def test_run_folder_and_exact_resume(tmp_path, model):
    straight = train(_cfg(epochs=2, model=model), tmp_path / "straight", device="cpu")
    steps = straight.steps_per_epoch * 2
    assert straight.step == steps == 6

    # the run folder has everything a user and the benchmarks need
    run = tmp_path / "straight"
    for name in ("checkpoint.pt", "g.pt", "d.pt", "config.json", "log.csv", "samples/epoch001.png",
                 "samples/epoch002.png", "ckpt/epoch001_g.pt", "ckpt/epoch002_d.pt"):
        assert (run / name).is_file(), name
    with open(run / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == list(range(1, steps + 1))
    if "d_x" in rows[0]:
        assert all(0 < float(r["d_x"]) < 1 and float(r["loss_d"]) > 0 for r in rows)
    G, _, _ = load_net(run / "g.pt", "generator", takes=family_of(model).generator_input)
    _assert_same({f"G.{k}": v for k, v in G.state_dict().items()},
                 {f"G.{k}": v for k, v in straight.G.state_dict().items()})

    # 1 epoch, stop, resume to 2 epochs: identical weights. SRGAN's gan stage drops its rate for the second half
    # of the run's epochs and StarGAN's decays over it, so a 1-epoch run has another schedule: it stops after the
    # first epoch of the 2-epoch run instead
    if model in (TINY_SR, TINY_ST):
        train(_cfg(epochs=2, model=model), tmp_path / "split", device="cpu", max_steps=steps // 2)
    else:
        train(_cfg(epochs=1, model=model), tmp_path / "split", device="cpu")
    resumed = train(_cfg(epochs=2, model=model), tmp_path / "split", device="cpu", resume=True)
    _assert_same(_weights(straight), _weights(resumed))

    # killed mid-epoch (step 5, last checkpoint at step 4): resume from the checkpoint
    killed = _KilledAfter(_cfg(epochs=2, model=model), tmp_path / "killed", device="cpu")
    with pytest.raises(_Killed):
        killed.fit()
    assert read_checkpoint(tmp_path / "killed" / "checkpoint.pt")["step"] == 4
    resumed = train(_cfg(epochs=2, model=model), tmp_path / "killed", device="cpu", resume=True)
    _assert_same(_weights(straight), _weights(resumed))
    with open(tmp_path / "killed" / "log.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == list(range(1, steps + 1))


def test_resume_refuses_a_different_recipe_and_an_existing_run(tmp_path):
    train(_cfg(epochs=1), tmp_path / "run", device="cpu")
    with pytest.raises(ConfigError, match="--resume"):
        train(_cfg(epochs=2), tmp_path / "run", device="cpu")
    with pytest.raises(ConfigError, match="lr: 0.0002 -> 0.001"):
        train(_cfg(epochs=2, lr=1e-3), tmp_path / "run", device="cpu", resume=True)


def test_init_starts_g_from_an_export_of_the_same_model_and_refuses_another(tmp_path):
    """--init: G starts from the export's weights (D afresh); a resumed run never reads the file again."""
    from dcgan.checkpoint import export_models
    from dcgan.models import build_net

    torch.manual_seed(9)
    g_path, _ = export_models(tmp_path / "old", TINY, build_net("generator", TINY), build_net("discriminator", TINY))
    t = Trainer(_cfg(epochs=1, init=str(g_path)), tmp_path / "run", "cpu")
    G, _, _ = load_net(g_path, "generator")
    _assert_same({f"G.{k}": v for k, v in t.G.state_dict().items()}, {f"G.{k}": v for k, v in G.state_dict().items()})
    t.fit()
    g_path.unlink()
    train(_cfg(epochs=2, init=str(g_path)), tmp_path / "run", device="cpu", resume=True)
    wider = dataclasses.replace(TINY, ngf=16)
    with pytest.raises(ConfigError, match=r"its generator is not this model's \(ngf 8 \(the run: 16\)\)"):
        Trainer(_cfg(epochs=1, model=wider, init=str(tmp_path / "run" / "g.pt")), tmp_path / "wide", "cpu")


def test_bf16_training_runs_and_learns_something(tmp_path):
    """Six bf16 steps: D learns to tell real from fake (its loss falls, D(x) pulls away from D(G(z))) and
    G's weights move; the losses track fp32's. A run whose updates did nothing fails every one of these."""
    import csv

    t = train(_cfg(epochs=2, precision="bf16"), tmp_path / "bf16", device="cpu")
    assert all(torch.isfinite(p).all() for p in t.G.parameters())
    assert t.G.main[0].weight.dtype == torch.float32  # autocast: master weights stay fp32
    init = Trainer(_cfg(epochs=2, precision="bf16"), tmp_path / "init", "cpu")
    assert not torch.equal(t.G.main[0].weight, init.G.main[0].weight)
    log = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(open(t.log_path))]
    assert len(log) == 6 and log[-1]["loss_d"] < log[0]["loss_d"] - 0.15
    assert log[-1]["d_x"] > log[-1]["d_g_z1"] + 0.05
    fp32 = train(_cfg(epochs=2), tmp_path / "fp32", device="cpu")
    ref = [float(r["loss_d"]) for r in csv.DictReader(open(fp32.log_path))]
    assert max(abs(a["loss_d"] - b) for a, b in zip(log, ref)) < 0.02


def test_bf16_channels_last_trains_a_conditional_gan_with_a_class_head(tmp_path):
    """Three bf16 steps of a c-GAN whose D has an auxiliary classifier, channels-last: every weight stays
    finite, the class head moves, and the losses (the classifier's cross-entropy in them) track fp32's."""
    model = dataclasses.replace(TINY_C, g_cond="cbn", d_cond="acgan")
    bf16 = train(_cfg(epochs=1, model=model, precision="bf16"), tmp_path / "bf16", device="cpu")
    assert bf16.cfg.channels_last and all(torch.isfinite(p).all() for p in bf16.D.parameters())
    init = Trainer(_cfg(epochs=1, model=model, precision="bf16"), tmp_path / "init", "cpu")
    assert not torch.equal(bf16.D.classifier.weight, init.D.classifier.weight)
    fp32 = train(_cfg(epochs=1, model=model), tmp_path / "fp32", device="cpu")
    logs = [[float(r["loss_d"]) for r in csv.DictReader(open(t.log_path))] for t in (bf16, fp32)]
    assert len(logs[0]) == 3 and max(abs(a - b) for a, b in zip(*logs)) < 0.05


@pytest.mark.parametrize("family", ["dcgan", "cdcgan", "srgan", "stargan"])
def test_ddp_two_cpu_processes_agree(tmp_path, family):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
           str(Path(__file__).with_name("ddp_worker.py")), str(out), "3", family]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = torch.load(out / "rank0.pt"), torch.load(out / "rank1.pt")
    _assert_same(r0, r1)
    # and they moved away from the common initialisation, every parameter (a class head, embeddings) included
    model = read_checkpoint(out / "checkpoint.pt")["config"]
    assert model["family"] == family
    init = Trainer(TrainConfig(model=config_from_dict(model), dataset="synthetic", epochs=1, batch_size=32, seed=3),
                   tmp_path / "x", "cpu")
    start = {**{f"G.{k}": v for k, v in init.G.named_parameters()}, **{f"D.{k}": v for k, v in init.D.named_parameters()}}
    assert start.keys() == r0.keys()
    assert not [k for k in r0 if torch.equal(r0[k], start[k])]
    assert read_checkpoint(out / "checkpoint.pt")["step"] == 3
    assert len(read_checkpoint(out / "checkpoint.pt")["noise_rng"]) == 2


def test_bf16_on_a_cpu_without_native_bf16_warns(monkeypatch):
    """Emulated bf16 ran a DCGAN step about 40x slower than fp32 on an AVX2 CPU: say so, don't hide it."""
    import warnings

    from dcgan import device

    for native in (False, True):
        device.warn_if_bf16_is_emulated.cache_clear()
        monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: native)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with device.autocast(torch.device("cpu"), "bf16"):
                pass
        assert len([w for w in caught if "no native bf16" in str(w.message)]) == (0 if native else 1)
    device.warn_if_bf16_is_emulated.cache_clear()
