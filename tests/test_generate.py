"""dcgan.generate: the one sampling loop, against plain calls of the generator."""
import pytest
import torch

from dcgan.errors import ConfigError
from dcgan.generate import generate
from dcgan.nets import sample_z
from fixtures_tasks import varied_generator

N = 7
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def G():
    return varied_generator()


@pytest.fixture(scope="module")
def z(G):
    return sample_z(N, G.cfg, torch.Generator().manual_seed(0))


def _loop(G, z, batch_size, names=(), masks=None):
    """A plain loop over G, batch by batch: the images and the named activations."""
    images, acts = [], []
    with torch.no_grad():
        for chunk in z.split(batch_size):
            x, named = G.forward_with_intermediates(chunk, names, masks)
            images.append(x)
            acts.append(named)
    return torch.cat(images), {n: torch.cat([a[n] for a in acts]) for n in names}


@pytest.mark.parametrize("batch_size", [1, 3, 7, 64])  # 3 does not divide 7
def test_images_equal_a_plain_loop_over_g(G, z, batch_size):
    with torch.no_grad():
        plain = torch.cat([G(chunk) for chunk in z.split(batch_size)])
    images = generate(G, z, batch_size=batch_size, device=CPU)
    assert torch.equal(images, plain)
    assert images.dtype == torch.float32 and images.device == CPU and images.abs().max() <= 1
    assert images.std(0).mean() > 0.05  # the samples differ: the comparison means something
    assert torch.equal(generate(G, z.flatten(1), batch_size=batch_size, device=CPU), plain)  # N x nz works too


def test_samples_are_drawn_in_eval_mode_and_the_mode_is_restored(z):
    G = varied_generator()
    with torch.no_grad():
        expected = G(z)
    state = {k: v.clone() for k, v in G.state_dict().items()}
    G.train()
    assert torch.equal(generate(G, z, batch_size=N, device=CPU), expected)
    assert all(m.training for m in G.modules())
    assert all(torch.equal(v, state[k]) for k, v in G.state_dict().items())  # batch norm's statistics kept


def test_layers_are_those_of_forward_with_intermediates(G, z):
    names = ("layer1", "layer3")
    images, acts = generate(G, z, batch_size=3, device=CPU, layers=names)
    plain_images, plain_acts = _loop(G, z, 3, names)
    assert torch.equal(images, plain_images)
    assert list(acts) == list(names)
    for name in names:
        assert torch.equal(acts[name], plain_acts[name])
        assert acts[name].dtype == torch.float32 and acts[name].device == CPU
    assert acts["layer3"].shape == (N, G.feature_channels["layer3"], 16, 16)


def test_masks_zero_the_masked_maps(G, z):
    drop = [0, 3, 7]
    mask = torch.ones(G.feature_channels["layer2"])
    mask[drop] = 0
    with torch.no_grad():  # by hand: the maps set to zero after layer2's ReLU
        x = z
        for i, module in enumerate(G.main):
            x = module(x)
            if i == 5:  # layer2: projection (0-2), then ConvTranspose 3, BatchNorm 4, ReLU 5
                x[:, drop] = 0
    images, acts = generate(G, z, batch_size=N, device=CPU, masks={"layer2": mask}, layers=("layer2",))
    assert torch.equal(images, x)
    assert (acts["layer2"][:, drop] == 0).all() and (acts["layer2"][:, [1, 2]] > 0).any()
    plain = generate(G, z, batch_size=N, device=CPU)
    assert (images - plain).abs().max() > 0.05  # the dropped maps did draw something


def test_bf16_is_close_to_fp32_but_not_equal(G, z):
    fp32, acts32 = generate(G, z, batch_size=3, device=CPU, layers=("layer2",))
    bf16, acts16 = generate(G, z, batch_size=3, device=CPU, precision="bf16", layers=("layer2",))
    assert bf16.dtype == acts16["layer2"].dtype == torch.float32  # returned as float32 whatever the precision
    assert not torch.equal(bf16, fp32)
    torch.testing.assert_close(bf16, fp32, rtol=0, atol=0.05)  # images in [-1, 1]; bf16 keeps 8 bits of mantissa
    torch.testing.assert_close(acts16["layer2"], acts32["layer2"], rtol=0.05, atol=0.05)


def test_an_unknown_precision_is_a_config_error(G, z):
    with pytest.raises(ConfigError, match="precision 'fp16'"):
        generate(G, z, batch_size=3, device=CPU, precision="fp16")
