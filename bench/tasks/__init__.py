"""Benchmark tasks, one module per family; importing this package registers them all."""
from bench.tasks import (cas, class_grid, dedup, fid, forget, guided_backprop, intra_fid, latent,  # noqa: F401
                         memorisation, sr, svm, translation)
