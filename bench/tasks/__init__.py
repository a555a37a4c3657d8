"""Benchmark tasks, one module per family; importing this package registers them all."""
from bench.tasks import dedup, fid, latent, svm  # noqa: F401
