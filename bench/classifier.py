"""The fixed classifier of the Classification Accuracy Score (``cas``): one small CNN, one recipe, one seed.

CAS (Ravuri & Vinyals 2019) trains a classifier on a model's samples and tests it on real images. Its
number means something only beside the same classifier trained the same way on real images, so the
network and its training are fixed here; ``cas`` exposes only the recipe's few constants (epochs, rate,
batch, width), which every training set of a run shares.

The recipe (docs/tasks/cas.md):

- the net: three blocks of 3x3 convolution -> batch norm -> ReLU, of ``width``, 2 ``width`` and
  4 ``width`` channels, the first two followed by 2x2 max pooling; global average pooling; one
  linear layer to the classes. A few hundred thousand weights at width 32: a fraction of the
  ResNet-56 Ravuri & Vinyals trained on CIFAR-10, so CAS fits a CPU budget.
- its input: the uint8 images scaled to [-1, 1], as the discriminator sees them; no augmentation.
- its training: PyTorch's default initialisation and the minibatch order drawn from ``seed`` (one
  ``torch.Generator``, the process's random state untouched), Adam (Kingma & Ba's defaults but the
  rate) from ``lr`` annealed to 0 along a cosine over every step (Loshchilov & Hutter 2017, without
  restarts), cross-entropy, ``epochs`` passes of minibatches of ``batch_size``, the last partial batch
  kept; no weight decay, no early stopping: the test split is only ever scored once. At a constant
  rate the test accuracy of the last epoch swung by 20 points from one epoch to the next on
  Fashion-MNIST (docs/experiments/cas-recipe.md); the annealed rate ends where the loss settles.
"""
from __future__ import annotations

import torch
from torch import nn


class SmallCNN(nn.Module):
    """uint8 images (N, nc, S, S) of any S >= 4 -> class logits (N, num_classes)."""

    def __init__(self, nc: int, num_classes: int, width: int):
        super().__init__()
        layers: list[nn.Module] = []
        channels = [nc, width, 2 * width, 4 * width]
        for i in range(3):
            layers += [nn.Conv2d(channels[i], channels[i + 1], 3, padding=1, bias=False),
                       nn.BatchNorm2d(channels[i + 1]), nn.ReLU(inplace=True)]
            if i < 2:
                layers.append(nn.MaxPool2d(2))  # (width) x S/2 x S/2, then (2 width) x S/4 x S/4
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float() / 127.5 - 1
        return self.head(self.features(x).mean((2, 3)))


def forward_flops(nc: int, size: int, width: int) -> float:
    """Multiply-adds x 2 of one image through ``SmallCNN``'s convolutions (the rest is negligible)."""
    channels, side, total = [nc, width, 2 * width, 4 * width], size, 0
    for i in range(3):
        total += 2 * 9 * channels[i] * channels[i + 1] * side * side
        side //= 2 if i < 2 else 1
    return float(total)


def train_classifier(images: torch.Tensor, labels: torch.Tensor, num_classes: int, *, epochs: int, lr: float,
                     batch_size: int, width: int, seed: int, device: torch.device) -> SmallCNN:
    """``SmallCNN`` trained by the recipe on uint8 ``images`` (N, nc, S, S) with int64 ``labels``; eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # the default initialisation, drawn from the seed
        torch.manual_seed(int(torch.randint(2**62, (1,), generator=g)))
        net = SmallCNN(images.shape[1], num_classes, width)
    net = net.to(device).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    steps = epochs * -(-len(images) // batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    loss = nn.CrossEntropyLoss()
    for _ in range(epochs):
        for batch in torch.randperm(len(images), generator=g).split(batch_size):
            x, y = images[batch].to(device), labels[batch].to(device)
            optimizer.zero_grad(set_to_none=True)
            loss(net(x), y).backward()
            optimizer.step()
            schedule.step()
    return net.eval()


@torch.no_grad()
def predict(net: SmallCNN, images: torch.Tensor, device: torch.device, batch_size: int = 1024) -> torch.Tensor:
    """The predicted class of each uint8 image, int64 on the CPU."""
    return torch.cat([net(x.to(device)).argmax(1).cpu() for x in images.split(batch_size)])


def accuracies(predicted: torch.Tensor, labels: torch.Tensor, num_classes: int) -> tuple[float, list[float]]:
    """(overall accuracy, accuracy on each class's images; NaN for a class with none)."""
    right = predicted == labels
    per_class = [float(right[labels == c].float().mean()) if (labels == c).any() else float("nan")
                 for c in range(num_classes)]
    return float(right.float().mean()), per_class
