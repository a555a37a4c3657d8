"""Sort the 1,000-image ImageNet sample (one validation image per class) into animal / other class folders,
for the transfer probe of docs/experiments/headline.md.

One image per class cannot train a 1000-way probe, so the classes are grouped in two: ImageNet-1k's
classes 0-397 (wnids n01440764 tench ... n02655020 puffer, in the standard sorted order) are the animals,
398-999 (abacus onwards: artefacts, food, plants, landscapes) the rest. Every fourth class of each group
goes to the test split: 751 training and 249 test images (one class has two), no class in both. Links,
not copies.

    python docs/experiments/headline/imagenet_animals.py ~/data/imagenet-sample-64 ~/data/imagenet-animals
    bench run svm --dataset class-folders --data-root ~/data/imagenet-animals --ckpt D --set val_size=150
"""
import sys
from pathlib import Path

ANIMALS = 398  # ImageNet-1k classes 0-397


def main(sample: Path, out: Path) -> None:
    wnids = sorted(p.name for p in sample.iterdir() if p.is_dir())
    if len(wnids) != 1000:
        sys.exit(f"{sample}: expected the 1,000 class folders of the ImageNet sample, found {len(wnids)}")
    for index, wnid in enumerate(wnids):
        group = "animal" if index < ANIMALS else "other"
        position = index if index < ANIMALS else index - ANIMALS
        split = "test" if position % 4 == 3 else "train"
        for image in sorted((sample / wnid).iterdir()):
            link = out / split / group / image.name
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to(image.resolve())
    for split in ("train", "test"):
        print(split, {g: len(list((out / split / g).iterdir())) for g in ("animal", "other")})


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: imagenet_animals.py IMAGENET_SAMPLE_FOLDER OUT_FOLDER")
    main(Path(sys.argv[1]).expanduser(), Path(sys.argv[2]).expanduser())
