"""The two flavours of image data set, and what loaders return before a data set is built.

Item ``i`` of either flavour is a ``(uint8 tensor C×S×S, int label)`` pair (label -1 when
unlabeled) at the image size and number of channels the caller asked for; a data set read with
per-image attributes (``load_dataset(..., attrs=...)``) has labels N×k of 0/1 and item ``i``'s label is
its row (an int64 tensor of k), so that a DataLoader's default collation gives B×k.

- ``TensorImageDataset`` holds every image in memory, already resized: small data sets are loaded,
  subset and resized once, batched, so that training can index them on the device without a
  DataLoader. Loaders return them as ``Arrays``.
- ``FileImageDataset`` decodes one file (or one lmdb record, ``LmdbImageDataset``) per item, for
  collections too big for RAM; it is picklable for DataLoader workers. Loaders return them as ``Files``.
  ``dcgan.data.decoded`` serves one from its pixels decoded once, when asked and within its budget.
"""
from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from dcgan.data import pixels
from dcgan.data.lmdb_env import lmdb_env
from dcgan.errors import DataError, one_line


class ImageDataset(torch.utils.data.Dataset):
    """Attributes shared by both flavours; ``transform_id`` names the pixel pipeline.

    ``transform_id`` changes whenever the pixels produced would change (size, channels, resize
    method, source format), so consumers can key caches of derived data (e.g. FID statistics) on
    ``(name, split, transform_id)``. The subset is not part of it. ``keep`` is the subset's indices
    into the split (None: all of it).

    ``data_fingerprint`` is the content fingerprint of the whole split's source (the files it reads,
    see ``dcgan.data.fingerprint``), given by ``load_dataset`` as a function and computed on first use: a
    training run never pays for it.

    ``class_names`` says what each class label means (``()`` when unknown or unlabelled); ``attributes``
    names the columns of N×k attribute labels (``()`` otherwise); ``selection`` is how ``load_dataset``
    chose and relabelled classes or attribute columns (e.g. ``classes=3,5``; "" for none): it changes the
    labels served without changing ``keep``, so it is part of ``fingerprint``.
    """

    def __init__(self, *, name: str, split: str, channels: int, image_size: int,
                 num_classes: int | None, labels: torch.Tensor | None, transform_id: str,
                 keep: torch.Tensor | None, data_fingerprint: Callable[[], str],
                 class_names: tuple[str, ...] = (), attributes: tuple[str, ...] = (), selection: str = ""):
        self.name = name
        self.split = split
        self.channels = channels
        self.image_size = image_size
        self.num_classes = num_classes
        self.labels = labels
        self.transform_id = transform_id
        self.keep = keep
        self.class_names = class_names
        self.attributes = attributes
        self.selection = selection
        self._data_fingerprint: Callable[[], str] | str = data_fingerprint

    def source_side(self, i: int) -> int:
        """The short side of image ``i`` as stored, before the pipeline resizes it to ``image_size``."""
        raise NotImplementedError

    @property
    def data_fingerprint(self) -> str:
        if not isinstance(self._data_fingerprint, str):
            self._data_fingerprint = self._data_fingerprint()
        return self._data_fingerprint

    def _label(self, i: int) -> int | torch.Tensor:
        """Item ``i``'s class (-1 when unlabelled), or its row of attribute labels."""
        if self.labels is None:
            return -1
        return self.labels[i] if self.labels.dim() == 2 else int(self.labels[i])

    def item_name(self, i: int) -> str:
        """What a user finds item ``i`` by (in error messages and reports): here its index."""
        return str(i)

    def fingerprint(self) -> str:
        """A sha256 that changes whenever the images or labels served would change (files, subset,
        transform): the identity of this data in caches of numbers derived from it (e.g. FID statistics)."""
        h = hashlib.sha256(f"{self.data_fingerprint}\0{self.transform_id}\0".encode())
        h.update(b"all" if self.keep is None else self.keep.numpy().tobytes())
        if self.selection:  # only then, so that the fingerprints of whole data sets are those they always had
            h.update(f"\0{self.selection}".encode())
        return h.hexdigest()

    def __repr__(self) -> str:
        selection = f", {self.selection}" if self.selection else ""
        return (f"{type(self).__name__}({self.name!r}, split={self.split!r}, n={len(self)}, "
                f"{self.channels}x{self.image_size}x{self.image_size}, {self.transform_id}{selection})")


class TensorImageDataset(ImageDataset):
    """All images in memory as one uint8 tensor N×C×S×S, at the final size and channels."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None, *, stored_side: int, **meta):
        super().__init__(channels=images.shape[1], image_size=images.shape[-1], labels=labels, **meta)
        self.images = images
        self.stored_side = stored_side  # the arrays' short side before resizing

    def source_side(self, i: int) -> int:
        return self.stored_side

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int | torch.Tensor]:
        return self.images[i], self._label(i)


class FileImageDataset(ImageDataset):
    """Images decoded per item from files: converted to RGB or L, short side resized, centre-cropped.

    This is torchvision's DCGAN example pipeline (Resize + CenterCrop, antialiased), on collections
    too big to hold in memory. ``items`` are file paths (lmdb keys in ``LmdbImageDataset``).
    """

    def __init__(self, items: list, labels: torch.Tensor | None, *, image_size: int, channels: int, **meta):
        super().__init__(channels=channels, image_size=image_size, labels=labels,
                         transform_id=f"pil-{pixels.transform_id(image_size, channels)}", **meta)
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int | torch.Tensor]:
        source, where = self._source(i)
        image = pixels.decode_image(source, where, "L" if self.channels == 1 else "RGB")
        return TF.pil_to_tensor(pixels.resize_crop(image, self.image_size)), self._label(i)

    def item_name(self, i: int) -> str:
        return str(self.items[i])

    def source_side(self, i: int) -> int:
        source, where = self._source(i)
        try:
            with Image.open(source) as image:  # the header alone
                return min(image.size)
        except (OSError, SyntaxError, ValueError) as e:
            raise DataError(f"{where}: cannot read image ({one_line(e)})") from e

    def _source(self, i: int) -> tuple[str | io.BytesIO, str]:
        """What PIL opens for item ``i``, and how to name it in an error."""
        return self.items[i], self.item_name(i)


class LmdbImageDataset(FileImageDataset):
    """A FileImageDataset whose items are keys of an lmdb of encoded images (LSUN's format)."""

    def __init__(self, lmdb_path: str | os.PathLike, keys: list[bytes], **kwargs):
        super().__init__(keys, None, **kwargs)
        self.lmdb_path = str(lmdb_path)

    def item_name(self, i: int) -> str:
        return f"{self.lmdb_path}[{self.items[i].decode(errors='replace')}]"

    def _source(self, i: int) -> tuple[io.BytesIO, str]:
        where = self.item_name(i)
        with lmdb_env(self.lmdb_path).begin(write=False) as txn:
            value = txn.get(self.items[i])
        if value is None:
            raise DataError(f"{where}: key not found in the lmdb")
        return io.BytesIO(value), where


# ---- what loaders return --------------------------------------------------------------------------

@dataclass(frozen=True)
class Arrays:
    """An in-memory data set at its native size: uint8 images N×C×H×W and int64 labels (N, or N×k
    attribute labels named by ``attributes``); ``class_names`` when the loader found them in the data."""
    images: torch.Tensor
    labels: torch.Tensor | None
    source: str = ""  # prefix for transform_id when a data set has several source formats
    class_names: tuple[str, ...] = ()
    attributes: tuple[str, ...] = ()

    def build(self, keep: torch.Tensor | None, channels: int | None, image_size: int, **meta) -> TensorImageDataset:
        images, labels = self.images, self.labels
        if keep is not None:
            images = images[keep]
            labels = None if labels is None else labels[keep]
        images = pixels.resize_batch(pixels.to_channels(images, channels or images.shape[1]), image_size)
        transform_id = self.source + pixels.transform_id(image_size, images.shape[1])
        return TensorImageDataset(images.contiguous(), labels, transform_id=transform_id, keep=keep,
                                  stored_side=min(self.images.shape[-2:]), **meta)

    def __len__(self) -> int:
        return self.images.shape[0]


@dataclass(frozen=True)
class Files:
    """A lazy data set: image file paths (or lmdb keys when ``lmdb`` is set) and labels, with the same
    ``class_names`` and ``attributes`` as ``Arrays``."""
    items: list
    labels: torch.Tensor | None
    lmdb: Path | None = None
    class_names: tuple[str, ...] = ()
    attributes: tuple[str, ...] = ()

    def build(self, keep: torch.Tensor | None, channels: int | None, image_size: int, **meta) -> FileImageDataset:
        items, labels = self.items, self.labels
        if keep is not None:
            items = [items[i] for i in keep.tolist()]
            labels = None if labels is None else labels[keep]
        kwargs = dict(image_size=image_size, channels=channels or 3, keep=keep, **meta)
        if self.lmdb is not None:
            return LmdbImageDataset(self.lmdb, items, **kwargs)
        return FileImageDataset(items, labels, **kwargs)

    def __len__(self) -> int:
        return len(self.items)
