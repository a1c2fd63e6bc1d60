"""CIFAR ResNets after He et al. (2016): ResNet-20, -32, -56, with projection shortcuts.

A 3x3 convolution with 16 channels (``conv1``, ``bn1``, ``relu``), three stages
(``stage1``, ``stage2``, ``stage3``) of ``n = (depth - 2) / 6`` basic blocks with 16, 32 and
64 channels, global average pooling (``pool``), ``flatten`` and a Linear ``classifier``.
The first block of stages 2 and 3 has stride 2 and a projection shortcut (a 1x1 convolution
and BatchNorm, "option B"); every other shortcut is the identity. This is not He et al.'s
CIFAR setting: their Section 4.2 uses the parameter-free "option A" (identity, subsampled
and zero-padded) on CIFAR. The projection follows open_lth's CIFAR ResNets and adds 2,752
parameters to ResNet-20 (272,474 instead of 269,722 at 10 classes).

A block ``stage<s>.<i>`` holds ``conv1``, ``bn1``, ``relu1``, ``conv2``, ``bn2``, optionally
``shortcut`` (``shortcut.0`` the 1x1 conv, ``shortcut.1`` its BatchNorm), and ``relu2``;
its forward is ``relu2(bn2(conv2(relu1(bn1(conv1(x))))) + shortcut(x))`` with a plain ``+``.
Convolutions have no bias (BatchNorm follows each). A ``width`` multiplier scales all
channel counts. 1-D inputs use Conv1d (after an ``unflatten`` module for ``(L,)`` inputs);
``resnet1d`` (:mod:`graphtickets.models.conv1d`) is the same network for sequences, with any
depth 6n + 2 and explicit stage widths.
"""

from __future__ import annotations

from torch import Tensor, nn

from graphtickets.models.core import ModelError, check_width, register_model, scaled
from graphtickets.models.layers import conv_kind, front

__all__ = ["BasicBlock", "ResNet", "resnet"]


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm and a residual connection (option B shortcut)."""

    def __init__(self, kind_conv: type[nn.Module], kind_bn: type[nn.Module], c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = kind_conv(c_in, c_out, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = kind_bn(c_out)
        self.relu1 = nn.ReLU()
        self.conv2 = kind_conv(c_out, c_out, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = kind_bn(c_out)
        self.shortcut: nn.Sequential | None = None
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                kind_conv(c_in, c_out, kernel_size=1, stride=stride, bias=False), kind_bn(c_out)
            )
        self.relu2 = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        # `shortcut` is fixed at construction, so this branch is resolved when tracing.
        skip = x if self.shortcut is None else self.shortcut(x)
        return self.relu2(out + skip)


class ResNet(nn.Module):
    """The CIFAR ResNet (see the module docstring for the layout and module names)."""

    def __init__(
        self,
        in_shape: tuple[int, ...],
        num_classes: int,
        depth: int,
        width: float = 1.0,
        widths: tuple[int, int, int] | None = None,
    ) -> None:
        super().__init__()
        if (depth - 2) % 6 != 0 or depth < 8:
            raise ModelError(f"a CIFAR ResNet has depth 6n + 2 (8, 14, 20, 32, 44, 56, 110), got {depth}")
        n = (depth - 2) // 6
        kind = conv_kind(in_shape)
        self.unflatten = front(kind)
        # ``widths`` (the channels of the three stages) replaces the 16/32/64 x ``width`` plan
        c = list(widths) if widths is not None else [scaled(16, width), scaled(32, width), scaled(64, width)]
        self.conv1 = kind.conv(kind.channels, c[0], kernel_size=3, padding=1, bias=False)
        self.bn1 = kind.bn(c[0])
        self.relu = nn.ReLU()
        c_in = c[0]
        stages = []
        for s, c_out in enumerate(c):
            blocks = []
            for i in range(n):
                stride = 2 if (s > 0 and i == 0) else 1
                blocks.append(BasicBlock(kind.conv, kind.bn, c_in, c_out, stride))
                c_in = c_out
            stages.append(nn.Sequential(*blocks))
        self.stage1, self.stage2, self.stage3 = stages
        self.pool = kind.avgpool(1)
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(c_in, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        if self.unflatten is not None:  # fixed at construction; resolved when tracing
            x = self.unflatten(x)
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.stage3(self.stage2(self.stage1(x)))
        return self.classifier(self.flatten(self.pool(x)))


def resnet(in_shape: tuple[int, ...], num_classes: int, depth: int, width: float = 1.0) -> ResNet:
    """A CIFAR ResNet of ``depth`` = 6n + 2 layers.

    References
    ----------
    He, K., Zhang, X., Ren, S. & Sun, J. (2016). Deep Residual Learning for Image
    Recognition. CVPR. (Section 4.2, the CIFAR-10 networks.)
    """
    return ResNet(in_shape, num_classes, depth, width=check_width(width))


def _register(depth: int) -> None:
    name = f"resnet{depth}"

    def builder(in_shape: tuple[int, ...], num_classes: int, width: float = 1.0) -> ResNet:
        return resnet(in_shape, num_classes, depth, width=width)

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = (
        f"ResNet-{depth} for CIFAR (He et al. 2016's layout, projection 'option B' shortcuts), "
        f"{(depth - 2) // 6} blocks per stage.\n\n"
        f"    Parameters\n    ----------\n    in_shape : tuple of int\n    num_classes : int\n"
        f"    width : float, default 1.0\n        Channel multiplier.\n"
    )
    register_model(name)(builder)


for _depth in (20, 32, 56):
    _register(_depth)
