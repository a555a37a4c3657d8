"""Extraction shared by the processes of a torchrun job (``bench.shards``): two CPU processes on gloo,
started with the environment torchrun sets, run real tasks through the `bench` CLI (the svm probe, fid with
a generator's samples, dedup) and give the features, caches and result rows of one process; a cache hit
costs rank 1 nothing; a failure on either rank ends both with the error. The sharding and the per-index
samples are checked in-process too."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from bench.shards import shard
from dcgan.config import DCGANConfig
from dcgan.errors import ConfigError
from dcgan.nets import indexed_z
from fixtures_fid import write_tiny_weights
from fixtures_tasks import tiny_checkpoints

WORKER = Path(__file__).with_name("shards_worker.py")
SAME = ["run_id", "task", "dataset", "split", "model", "features", "draw", "metric", "value", "params", "ckpt_sha256"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(tmp_path: Path, name: str, commands: list[dict], world: int) -> list[subprocess.Popen]:
    """``world`` processes of the worker running ``commands``: with the environment torchrun sets when
    ``world`` > 1, as a plain process otherwise; each its own cache."""
    out = tmp_path / name
    out.mkdir()
    (out / "commands.json").write_text(json.dumps(commands))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DCGAN_BENCH_CACHE": str(out / "cache")}
    if world > 1:
        env.update(WORLD_SIZE=str(world), LOCAL_WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                   PORTS=",".join(str(_free_port()) for _ in commands))
    return [subprocess.Popen([sys.executable, str(WORKER), str(out), str(out / "commands.json")],
                             env={**env, **({"RANK": str(r), "LOCAL_RANK": str(r)} if world > 1 else {})},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in range(world)]


def _finish(procs: list[subprocess.Popen]) -> list[int]:
    try:
        return [p.wait(timeout=120) for p in procs]
    finally:
        for p in procs:
            p.kill()


def _records(tmp_path: Path, name: str, rank: int) -> list[dict]:
    return json.loads((tmp_path / name / f"rank{rank}.json").read_text())


def _rows(tmp_path: Path, name: str, task: str) -> pd.DataFrame:
    df = pd.read_csv(tmp_path / name / "results" / f"{task}.csv", dtype=str, keep_default_na=False)
    return df[SAME].sort_values(SAME).reset_index(drop=True)


def test_two_processes_give_the_features_and_rows_of_one_and_fail_together(tmp_path):
    g, d = tiny_checkpoints(tmp_path / "ckpt", nc=1)
    weights = write_tiny_weights(tmp_path / "tiny.pt")

    def svm(seed=0, fault=None):  # 150 images a split in batches of 32: rank 0 extracts 96, rank 1 54
        return {"fault": fault, "args": [
            "run", "svm", "--dataset", "digits", "--ckpt", d, "--subset", 150, "--batch-size", 32, "--seed", seed,
            "--device", "cpu", "--set", "c_grid=0.001,0.01", "--set", "val_size=30", "--set", "selection_draws=1"]}

    fid = {"args": [  # 70 samples in G batches of 16 and Inception batches of 8: rank 0 draws 48, rank 1 22
        "run", "fid", "--ckpt", g, "--dataset", "digits", "--subset", 90, "--batch-size", 16, "--device", "cpu",
        "--set", "samples=70", "--set", "inception_batch_size=8", "--set", "extractor=tiny",
        "--set", f"inception_weights={weights}", "--set", "metrics=fid,kid,prc", "--set", "kid_subset_size=20",
        "--set", "kid_subsets=5"]}
    dedup = {"args": [  # the autoencoder trained on rank 0; the hashing pass shared
        "run", "dedup", "--dataset", "digits", "--subset", 120, "--device", "cpu", "--set", "epochs=1",
        "--set", "train_images=100", "--set", "inject=20", "--set", "radius=0,4", "--set", "chunk=16",
        "--set", "probe_shift=1"]}
    for name, commands, world in (("one", [svm(), fid, dedup], 1),
                                  ("two", [svm(), svm(), fid, dedup, svm(1, "rank1-extract"), svm(2, "rank0-task")],
                                   2)):
        for c in commands:
            c["args"] += ["--results", tmp_path / name / "results"]
        codes = _finish(_launch(tmp_path, name, [{**c, "args": [str(a) for a in c["args"]]} for c in commands], world))
        if name == "one":
            assert codes == [0], _records(tmp_path, name, 0)

    two = [_records(tmp_path, "two", r) for r in (0, 1)]
    # every command ran to its end on both ranks; rank 1 extracted its shard of each pass that was not cached
    assert [r["code"] for r in two[0]] == [r["code"] for r in two[1]] == [0, 0, 0, 0, 2, 2]
    served = [r["stderr"].strip().splitlines()[-1] if r["code"] == 0 else "" for r in two[1]]
    assert served[:4] == [f"rank 1 of 2: computed its shard of {n} extraction(s)" for n in (6, 0, 2, 1)]

    # the same numbers: the feature matrices (cached under the same keys) and the rows
    feats = {p.name: p for p in (tmp_path / "one" / "cache" / "features").glob("*.npy")}
    assert len(feats) == 6
    for name, path in feats.items():
        theirs = tmp_path / "two" / "cache" / "features" / name
        assert np.array_equal(np.load(path), np.load(theirs)), name
    real = sorted((tmp_path / "one" / "cache" / "fidelity").glob("*-features-*.pt"))
    assert real and all(torch.equal(torch.load(p), torch.load(tmp_path / "two" / "cache" / "fidelity" / p.name))
                        for p in real)
    for task in ("svm", "fid", "dedup"):
        ours, theirs = _rows(tmp_path, "one", task), _rows(tmp_path, "two", task)
        assert len(ours) > 3 and ours.equals(theirs), task
    assert len(_rows(tmp_path, "two", "svm").run_id.unique()) == 1  # the failed runs wrote no rows

    # a failure in rank 1's pass: rank 0 raises it, naming the rank, and rank 1 ends with it
    assert "Error: rank 1: injected: rank 1 cannot read its second batch" in two[0][4]["stderr"]
    assert "Error: rank 0 failed: DataError: rank 1: injected" in two[1][4]["stderr"]
    # a failure on rank 0 after its features ends both processes with its error
    assert "Error: injected: rank 0 fails after the features" in two[0][5]["stderr"]
    assert "Error: rank 0 failed: ConfigError: injected: rank 0 fails after the features" in two[1][5]["stderr"]


@pytest.mark.parametrize("n, unit, world", [(150, 32, 2), (70, 16, 3), (5, 8, 4), (0, 4, 2), (1000, 1, 7)])
def test_shards_are_contiguous_whole_units_covering_every_row(n, unit, world):
    parts = [shard(n, unit, world, r) for r in range(world)]
    assert [i for p in parts for i in p] == list(range(n))
    assert all(p.start % unit == 0 for p in parts if len(p))
    sizes = [-(-len(p) // unit) for p in parts]
    assert max(sizes) - min(sizes) <= 1


def test_sample_i_has_the_same_z_in_any_share_and_another_seed_or_index_another():
    cfg = DCGANConfig(nz=16)
    whole = indexed_z(range(40), cfg, seed=3)
    assert torch.equal(torch.cat([indexed_z(range(0, 13), cfg, 3), indexed_z(range(13, 40), cfg, 3)]), whole)
    assert whole.shape == (40, 16, 1, 1) and len({tuple(z.flatten().tolist()) for z in whole}) == 40
    assert not torch.equal(indexed_z(range(40), cfg, seed=4), whole)
    assert abs(float(whole.mean())) < 0.1 and abs(float(whole.std()) - 1) < 0.1
    uniform = indexed_z(range(40), DCGANConfig(nz=16, z_dist="uniform"), 3)
    assert uniform.min() >= -1 and uniform.max() <= 1
    with pytest.raises(ConfigError, match="seed -1"):
        indexed_z(range(2), cfg, -1)
