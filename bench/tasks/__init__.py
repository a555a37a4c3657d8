"""Benchmark tasks, one module per family; importing this package registers them all."""
from bench.tasks import dedup, fid, forget, guided_backprop, latent, memorisation, svm  # noqa: F401
