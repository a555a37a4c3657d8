"""Every numeric knob of the model and of training has a declared valid range, checked when the config
is made (so Python callers get it too) and reported as one line naming the knob, the value and the range;
the batch size is also checked against the data set before any training."""
import math

import pytest

from dcgan.config import DCGANConfig
from dcgan.errors import ConfigError
from dcgan.models.srgan import SRGANConfig
from dcgan.train import Trainer, TrainConfig, train


@pytest.mark.parametrize("kwargs,expected", [
    ({"lr": -1.0}, "parameter lr=-1: expected a number > 0 or none"),
    ({"lr": 0.0}, "parameter lr=0: expected a number > 0 or none"),
    ({"lr": math.nan}, "parameter lr=nan: expected a number > 0 or none (finite)"),
    ({"lr": math.inf}, "parameter lr=inf: expected a number > 0 or none (finite)"),
    ({"beta1": 2.0}, "parameter beta1=2: expected a number in [0, 1) or none"),
    ({"beta1": 1.0}, "parameter beta1=1: expected a number in [0, 1) or none"),
    ({"beta1": -0.1}, "parameter beta1=-0.1: expected a number in [0, 1) or none"),
    ({"epochs": 0}, "parameter epochs=0: expected an integer >= 1"),
    ({"epochs": 2.5}, "parameter epochs=2.5: expected an integer >= 1"),
    ({"batch_size": 0}, "parameter batch_size=0: expected an integer >= 1"),
    ({"checkpoint_every": 0}, "parameter checkpoint_every=0: expected an integer >= 1"),
    ({"subset": 0}, "parameter subset=0: expected an integer >= 1 or none"),
    ({"workers": -1}, "parameter workers=-1: expected an integer >= 0"),
    ({"seed": -1}, "parameter seed=-1: expected an integer in [0, 4294967295]"),
    ({"seed": 2**64}, "expected an integer in [0, 4294967295]"),
    ({"precision": "fp16"}, "parameter precision='fp16': expected one of fp32, bf16"),
    ({"data_cache": "yes"}, "parameter data_cache='yes': expected one of off, auto, on"),
    ({"data_cache": True}, "parameter data_cache=True: expected one of off, auto, on"),
    ({"subset": 64, "batch_size": 128}, "parameter batch_size=128: expected at most subset=64"),
])
def test_training_knobs_out_of_range_are_one_line_config_errors(kwargs, expected):
    with pytest.raises(ConfigError) as e:
        TrainConfig(**kwargs)
    assert expected in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("kwargs,expected", [
    ({"nz": 0}, "parameter nz=0: expected an integer in [1, 4096]"),
    ({"ngf": 0}, "parameter ngf=0: expected an integer in [1, 4096]"),
    ({"ndf": 100_000}, "parameter ndf=100000: expected an integer in [1, 4096]"),
    ({"nc": 2}, "parameter nc=2: expected one of 1, 3"),
    ({"nc": True}, "parameter nc=True: expected one of 1, 3"),
    ({"image_size": 64.0}, "parameter image_size=64.0: expected an integer >= 1"),
    ({"image_size": 48}, "image size 48 is not supported by arch 'dcgan'"),
    ({"arch": "resnet"}, "parameter arch='resnet': expected one of dcgan, imagenet32"),
])
def test_model_knobs_out_of_range_are_one_line_config_errors(kwargs, expected):
    with pytest.raises(ConfigError) as e:
        DCGANConfig(**kwargs)
    assert expected in str(e.value) and "\n" not in str(e.value)


def test_the_defaults_and_the_edges_of_each_range_are_accepted():
    assert (TrainConfig().lr, TrainConfig().beta1) == (2e-4, 0.5)  # Adam's: the model family's paper's
    assert (TrainConfig(model=SRGANConfig()).lr, TrainConfig(model=SRGANConfig(), beta1=0.5).beta1) == (1e-4, 0.5)
    TrainConfig(lr=1e-12, beta1=0.0, seed=2**32 - 1, workers=0, subset=1, batch_size=1, epochs=1, checkpoint_every=1)
    DCGANConfig(nz=1, ngf=4096, ndf=1, nc=1)


def test_a_batch_larger_than_the_data_set_is_refused_before_training(tmp_path):
    """A batch of 10^8 on 512 images trained one step of 512 images and reported 10^8 images a step."""
    tiny = DCGANConfig(image_size=32, ngf=8, ndf=8)
    with pytest.raises(ConfigError, match=r"batch_size=100000000: expected at most 512, the training images of "
                                          r"data set 'synthetic'"):
        train(TrainConfig(model=tiny, dataset="synthetic", batch_size=100_000_000), tmp_path / "run", device="cpu")
    assert not (tmp_path / "run" / "log.csv").exists()
    with pytest.raises(ConfigError, match=r"subset=100000: expected at most 512"):
        Trainer(TrainConfig(model=tiny, dataset="synthetic", subset=100_000, batch_size=16), tmp_path / "x", "cpu")
    # the largest batch that fits is one step per epoch of exactly that many images
    t = Trainer(TrainConfig(model=tiny, dataset="synthetic", subset=64, batch_size=64), tmp_path / "y", "cpu")
    assert (t.steps_per_epoch, t.local_batch) == (1, 64)


def test_max_steps_is_range_checked(tmp_path):
    with pytest.raises(ConfigError, match="max_steps=0: expected an integer >= 1"):
        train(TrainConfig(dataset="synthetic"), tmp_path / "run", device="cpu", max_steps=0)
