"""The DCGAN core: models, data sets, checkpoints and training (Radford, Metz & Chintala, 2016)."""

__version__ = "0.1.0"
