"""The data sets of the benchmarks: a registry of loaders and two flavours of image data set.

Every data set, whatever its format on disk, is served the same way: item ``i`` is a
``(uint8 tensor C×S×S, int label)`` pair (label -1 when unlabeled; a row of 0/1 when attributes are
read) at the image size and number of channels the caller asked for. Scaling to [-1, 1] is left to the consumer, so that images stay
small (uint8) in memory and on the device.

- ``registry``: the ``DATASETS`` table, ``load_dataset`` and ``data_fingerprint``;
- ``datasets``: the in-memory and decoded-per-item flavours; ``pixels``: the pixel pipeline both share;
- ``decoded``: a file-backed set decoded once into the cache folder and served memory-mapped
  (``load_dataset(data_cache=...)``);
- ``fingerprint``: content fingerprints of the files a data set reads (the identity of its data in caches);
- ``selection``: choosing some classes or attributes of a data set (``load_dataset(classes=, attrs=)``);
- one module per on-disk format or family (``builtin``, ``idx``, ``cifar``, ``svhn``, ``lsun``,
  ``imagenet``, ``classfolders``, ``celeba``, ``folder``), each registering its data sets when imported
  (all are, here), with ``files``, ``batches`` and ``lmdb_env`` the readers and file-system helpers they
  share.
"""
# each module registers its data sets when imported
from dcgan.data import builtin, celeba, cifar, classfolders, folder, idx, imagenet, lsun, svhn  # noqa: F401
from dcgan.data.datasets import FileImageDataset, ImageDataset, LmdbImageDataset, TensorImageDataset
from dcgan.data.decoded import DecodedImageDataset
from dcgan.data.registry import (DATASETS, DatasetSpec, data_fingerprint, dataset_names, get_spec, load_dataset,
                                 register_dataset, resolved_spec)

__all__ = ["DATASETS", "DatasetSpec", "DecodedImageDataset", "FileImageDataset", "ImageDataset", "LmdbImageDataset",
           "TensorImageDataset", "data_fingerprint", "dataset_names", "get_spec", "load_dataset",
           "register_dataset", "resolved_spec"]
