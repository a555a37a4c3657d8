"""Run by tests/test_shards.py as one process of a job (the environment torchrun sets: RANK, WORLD_SIZE,
MASTER_ADDR; or none of it, for the one-process reference): the `bench` commands listed in the JSON file
argv[2], one after the other through the real CLI, each on its own port of $PORTS. A command may carry a
fault, injected on one rank only: ``rank1-extract`` (rank 1's feature pass fails after its first batch)
or ``rank0-task`` (rank 0's task fails after its features, in the SVM fit). Writes each command's exit code
and stderr to argv[1]/rank<RANK>.json and exits with the last command's exit code."""
import contextlib
import io
import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import fixtures_fid  # noqa: E402,F401  (registers the tiny feature extractor the fid commands name)

from bench.cli import main  # noqa: E402
from bench.features import FeatureJob  # noqa: E402
from bench.tasks.svm import SvmProbe  # noqa: E402
from dcgan.errors import ConfigError, DataError  # noqa: E402


def fail_after_first_batch(original):
    def chunks(self, rows, device, notes):
        batches = original(self, rows, device, notes)
        yield next(batches)
        raise DataError("injected: rank 1 cannot read its second batch")
    return chunks


def fail_in_the_fit(*args, **kwargs):
    raise ConfigError("injected: rank 0 fails after the features")


out, commands = Path(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text())
rank = int(os.environ.get("RANK", "0"))
record, code = [], 0
for command, port in zip(commands, os.environ.get("PORTS", "").split(",") * len(commands)):
    os.environ["MASTER_PORT"] = port
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stderr(err):
        if command.get("fault") == "rank1-extract" and rank == 1:
            mp.setattr(FeatureJob, "chunks", fail_after_first_batch(FeatureJob.chunks))
        if command.get("fault") == "rank0-task" and rank == 0:
            mp.setattr(SvmProbe, "_probe", fail_in_the_fit)
        try:
            main([str(a) for a in command["args"]], prog_name="bench")
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    sys.stderr.write(err.getvalue())
    record.append({"code": code, "stderr": err.getvalue()})
(out / f"rank{rank}.json").write_text(json.dumps(record))
sys.exit(code)
