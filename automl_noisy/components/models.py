"""Family ``model`` (slot *forward*, the architecture): factories that build a Classifier."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from torch import nn

from automl_noisy.components.base import Classifier, ModelFactory, hyperparameter
from automl_noisy.registry import Registry

models: Registry[type[ModelFactory]] = Registry("model")


@models.register("mlp")
@dataclass
class MLP(ModelFactory):
    """A multilayer perceptron on flattened inputs: ``depth`` hidden layers of ``width`` ReLUs."""

    width: int = hyperparameter(256, 32, 1024, log=True)
    depth: int = hyperparameter(2, 1, 4)

    def build(self, input_shape: tuple[int, ...], num_classes: int) -> Classifier:
        layers: list[nn.Module] = [nn.Flatten()]
        size = math.prod(input_shape)
        for _ in range(self.depth):
            layers += [nn.Linear(size, self.width), nn.ReLU()]
            size = self.width
        return Classifier(nn.Sequential(*layers), size, num_classes)


@models.register("cnn")
@dataclass
class SmallCNN(ModelFactory):
    """A small conv net for image-shaped data ``(C, H, W)``.

    Two 3x3 conv-BN-ReLU blocks of ``channels``, a 2x2 max-pool, one block of ``2 * channels``,
    then global average pooling into the features.
    """

    channels: int = hyperparameter(32, 8, 128, log=True)
    spatial: ClassVar[bool] = True

    @classmethod
    def accepts(cls, input_shape: tuple[int, ...]) -> bool:
        return len(input_shape) == 3 and min(input_shape[1:]) >= 2

    def build(self, input_shape: tuple[int, ...], num_classes: int) -> Classifier:
        c = self.channels

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]

        body = nn.Sequential(
            *block(input_shape[0], c), *block(c, c), nn.MaxPool2d(2),
            *block(c, 2 * c), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        return Classifier(body, 2 * c, num_classes)


@models.register("resnet18")
@dataclass
class ResNet18(ModelFactory):
    """ResNet-18 (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016) for small images.

    torchvision's ``resnet18(weights=None)`` (nothing is downloaded) adapted as for CIFAR: the first
    convolution is 3x3 with stride 1 over the data's channels and the max-pool is dropped, so a
    32x32 image reaches the last stage at 4x4. The features are the globally average-pooled 512-d
    output of the last stage; the head is a new linear layer. ``zero_init_residual`` starts the last
    batch norm of each residual branch at zero, so every block starts as the identity (Goyal et al.,
    "Accurate, Large Minibatch SGD", 2017). Image-shaped data ``(C, H, W)`` with ``H, W >= 4`` only.
    """

    zero_init_residual: bool = hyperparameter(False)
    spatial: ClassVar[bool] = True

    @classmethod
    def accepts(cls, input_shape: tuple[int, ...]) -> bool:
        return len(input_shape) == 3 and min(input_shape[1:]) >= 4

    def build(self, input_shape: tuple[int, ...], num_classes: int) -> Classifier:
        from torchvision.models import resnet18

        net = resnet18(weights=None, zero_init_residual=self.zero_init_residual)
        net.conv1 = nn.Conv2d(input_shape[0], 64, kernel_size=3, stride=1, padding=1, bias=False)
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")  # as torchvision's
        net.maxpool = nn.Identity()
        net.fc = nn.Identity()  # forward now ends at the pooled, flattened 512-d features
        return Classifier(net, 512, num_classes)


def default_model(input_shape: tuple[int, ...]) -> str:
    """The architecture to use when none is chosen: a CNN for images, else an MLP."""
    return "cnn" if SmallCNN.accepts(input_shape) else "mlp"
