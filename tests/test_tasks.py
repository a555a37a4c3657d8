"""Every registered task, end to end on tiny real data with its declared smoke parameters, on the
checkpoints of every model family.

The list comes from the registry, so a new task without smoke parameters, or one that does not run
through the command line on a tiny checkpoint, fails here. A task that does not apply to a family
(vector-arithmetic on a conditional GAN, say; every task of a G on an SRGAN, whose G takes an image, not
z) refuses its checkpoints in one line, before any work, and runs on another family's. A task of a D runs
on every family's D.
"""
import json
import sys

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from bench.cli import main
from bench.results import RESULT_COLUMNS
from bench.run import TASKS
from dcgan.config import DCGANConfig
from dcgan.data import data_fingerprint, load_dataset
from dcgan.models import FAMILIES
from dcgan.models.cdcgan import CDCGANConfig
from dcgan.models.srgan import SRGANConfig
from dcgan.models.stargan import StarGANConfig
from dcgan.nets import sample_z
from fixtures_fid import write_tiny_weights
from fixtures_tasks import tiny_checkpoints


def _inputs(name: str, tmp_path, g) -> list[str]:
    """What a task needs besides its smoke parameters that only a test can make (files, test extractors)."""
    if name in ("fid", "intra-fid"):  # the tiny extractor stands in for Inception (no download here)
        return ["--set", "extractor=tiny", "--set", f"inception_weights={write_tiny_weights(tmp_path / 'w.pt')}"]
    if name == "vector-arithmetic":
        from dcgan.checkpoint import read_checkpoint
        from dcgan.models import config_from_dict, family_of

        cfg = config_from_dict(read_checkpoint(g)["config"])
        z = (sample_z(16, cfg, torch.Generator().manual_seed(0)) if family_of(cfg).generator_input == "z"
             else torch.zeros(16, 100, 1, 1))  # a G of no z is refused before the file is read
        torch.save(z, tmp_path / "grid.png.z.pt")
        return ["--set", f"z={tmp_path / 'grid.png.z.pt'}"]
    return []


def _record_reads(monkeypatch) -> tuple[set, set]:
    """(the splits whose fingerprints went into the run id, the splits the run loaded), as (data set, split)."""
    declared, loaded = set(), set()

    def fingerprint(name, split, root=None):
        declared.add((name, split))
        return data_fingerprint(name, split, root=root)

    def load(name, split="train", **kwargs):
        loaded.add((name, split))
        return load_dataset(name, split, **kwargs)

    monkeypatch.setattr(sys.modules["bench.run"], "data_fingerprint", fingerprint)
    for module in ("bench.shards", "bench.tasks.fid"):  # DataRef.load: every split a task reads
        monkeypatch.setattr(sys.modules[module], "load_dataset", load)
    return declared, loaded


# a tiny model of each family: the conditional one with its default conditioning (concat G, projection D)
MODELS = {"dcgan": DCGANConfig(image_size=32, nc=3, ngf=8, ndf=8),
          "cdcgan": CDCGANConfig(image_size=32, nc=3, ngf=8, ndf=8),
          "srgan": SRGANConfig(image_size=32, nc=3, ngf=8, ndf=8, blocks=2, hr_size=32),
          "stargan": StarGANConfig(image_size=32, nc=3, ngf=8, ndf=8, res_blocks=1, domains=("disc", "square", "ring"))}
NOT_APPLICABLE = ("conditional", "whose generator takes")  # the reasons a task gives for refusing a family


def test_every_family_has_a_tiny_model_here():
    assert sorted(MODELS) == FAMILIES.names()


@pytest.mark.parametrize("name", TASKS.names())
def test_every_task_runs_end_to_end_with_its_smoke_parameters(name, tmp_path, monkeypatch):
    assert TASKS.get(name).smoke, f"task {name!r} declares no smoke parameters"
    ran = [family for family, config in MODELS.items() if _runs(name, tmp_path / family, monkeypatch, config)]
    assert ran, f"task {name!r} refused every family's checkpoints"
    if TASKS.get(name).needs == "discriminator":  # features of an image: a projection c-GAN's D and an SRGAN's too
        assert ran == list(MODELS), f"task {name!r} of a D refused the D of {sorted(set(MODELS) - set(ran))}"


def _runs(name, tmp_path, monkeypatch, config) -> bool:
    """Whether the task ran on tiny checkpoints of ``config`` (checking its rows), or refused them in one
    line saying why (False)."""
    task = TASKS.get(name)
    declared, loaded = _record_reads(monkeypatch)
    g, d = tiny_checkpoints(tmp_path / "ckpt", config=config)
    args = ["run", name, "--device", "cpu", "--subset", "150", "--results", str(tmp_path / "results")]
    if task.needs == "discriminator":
        args += ["--ckpt", str(d)]
    elif task.needs == "generator" or task.takes_sources:
        args += ["--ckpt", str(g)]
    if task.reads_data:
        args += ["--dataset", "synthetic"]
    for key, value in task.smoke.items():
        args += ["--set", f"{key}={','.join(map(str, value)) if isinstance(value, tuple) else value}"]
    args += _inputs(name, tmp_path, g)
    r = CliRunner().invoke(main, args, catch_exceptions=False)
    if r.exit_code == 2 and any(why in r.output for why in NOT_APPLICABLE):  # does not apply: it says so, first
        assert len(r.output.strip().splitlines()) == 1 and not list((tmp_path / "results").glob("**/*.*")), r.output
        return False
    assert r.exit_code == 0, r.output
    # the run id holds the content of every split the run read: a task declares them all (Task.reads)
    assert loaded <= declared, f"task {name!r} read {sorted(loaded - declared)} without declaring it"
    table = tmp_path / "results" / f"{name}.csv"
    if not table.exists():  # a first step that asks the user for input (forget without boxes)
        assert "Then run:" in r.output and list((tmp_path / "results" / name).glob("*/*.png"))
        return True
    df = pd.read_csv(table, keep_default_na=False)
    assert tuple(df.columns) == RESULT_COLUMNS and len(df) > 0
    assert (df.task == name).all() and df.run_id.nunique() == 1
    for params in df.params:  # the smoke parameters are what the rows say they ran with
        recorded = json.loads(params)
        for key, value in task.smoke.items():
            assert recorded[key] == (list(value) if isinstance(value, tuple) else value) or key == "radius"
    # the same run again replaces its own rows
    assert CliRunner().invoke(main, args, catch_exceptions=False).exit_code == 0
    assert len(pd.read_csv(table)) == len(df)
    return True
