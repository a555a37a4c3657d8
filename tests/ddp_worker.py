"""Run under torchrun by tests/test_train.py: a few DDP training steps on CPU (gloo) of a model of the family
named on the command line (dcgan; cdcgan with a class-conditional batch norm G and an auxiliary classifier D,
so that embeddings and a second head of D are synchronised too; srgan's gan stage, each rank cropping its own
images; stargan, G updated every step, its gradient penalty and two heads of D), then each rank writes its parameters so the test can check that both ranks hold the same model.

Batch-norm running statistics are left out on purpose: DDP keeps them per rank between forwards
(rank 0's are broadcast at the start of each forward, and rank 0 writes the checkpoints)."""
import sys

import torch

from dcgan.config import DCGANConfig
from dcgan.models.cdcgan import CDCGANConfig
from dcgan.models.srgan import SRGANConfig
from dcgan.models.stargan import StarGANConfig
from dcgan.train import TrainConfig, train

out, steps, family = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sizes = dict(image_size=32, nc=3, ngf=8, ndf=8)
model = {"dcgan": lambda: DCGANConfig(**sizes),
         "cdcgan": lambda: CDCGANConfig(**sizes, g_cond="cbn", d_cond="acgan"),
         "srgan": lambda: SRGANConfig(**sizes, blocks=2, scale=4, hr_size=16, stage="gan"),
         "stargan": lambda: StarGANConfig(**sizes, res_blocks=1, domains=("disc", "square", "ring"), n_critic=1)}[family]()
cfg = TrainConfig(model=model, dataset="synthetic", epochs=1, batch_size=32, seed=3, checkpoint_every=1000)
trainer = train(cfg, out, device="cpu", max_steps=steps)
params = {f"{name}.{k}": v.detach().clone()
          for name, net in (("G", trainer.G), ("D", trainer.D)) for k, v in net.named_parameters()}
torch.save(params, f"{out}/rank{trainer.rank}.pt")
