"""The large image classifiers for 32×32 inputs (CIFAR): VGG11/VGG13, the CIFAR ResNet32, and
torchvision's DenseNet121/ResNet101 with a 32×32 stem. Build them by name with
:func:`memkit.models.build`, which checks the input shape and the options first.

Each function takes ``input_shape`` ``(C, H, W)`` and ``n_classes`` K and returns a fresh
``nn.Module`` initialised from torch's global generator, mapping ``(B, C, H, W)`` images to
``(B, K)`` logits. All of them have BatchNorm (running statistics), so their seeds train one after
another rather than as one batched ensemble.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

#: Convolution widths of the CIFAR VGGs (Simonyan & Zisserman 2015, configurations A and B), "M" a 2×2 max-pool.
VGG_LAYERS: dict[str, tuple[int | str, ...]] = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg13": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
}


def _vgg(input_shape: Sequence[int], n_classes: int, depth: str) -> nn.Sequential:
    """VGG for 32×32 images, as commonly trained on CIFAR: for each width of ``VGG_LAYERS[depth]``
    Conv(3×3, same padding) → BN → ReLU, five 2×2 max-pools (32×32 → 1×1), then a global average
    pool → Linear(512, K) as the whole classifier head (instead of ImageNet's three 4096-unit layers).
    Images larger than 32×32 are averaged over the remaining positions."""
    layers: list[nn.Module] = []
    c_in = input_shape[0]
    for v in VGG_LAYERS[depth]:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(c_in, int(v), 3, padding=1), nn.BatchNorm2d(int(v)), nn.ReLU()]
            c_in = int(v)
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, n_classes))


def vgg11(input_shape: Sequence[int], n_classes: int) -> nn.Sequential:
    """VGG11 for 32×32 images (8 convolutions, configuration A; :func:`_vgg`): 9.23M parameters for K = 10."""
    return _vgg(input_shape, n_classes, "vgg11")


def vgg13(input_shape: Sequence[int], n_classes: int) -> nn.Sequential:
    """VGG13 for 32×32 images (10 convolutions, configuration B; :func:`_vgg`)."""
    return _vgg(input_shape, n_classes, "vgg13")


class BasicBlock(nn.Module):
    """He et al. 2016's basic residual block: relu(x' + BN(Conv3×3(relu(BN(Conv3×3(x)))))), where x'
    is the shortcut. Option A shortcut: the identity, or when the block halves the resolution and
    doubles the channels, x subsampled 2× with zero channels appended (no parameters)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.stride, self.extra = stride, c_out - c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = F.pad(x[..., ::self.stride, ::self.stride], (0, 0, 0, 0, 0, self.extra))
        return F.relu(out + shortcut)


def resnet32(input_shape: Sequence[int], n_classes: int) -> nn.Sequential:
    """The CIFAR ResNet-32 of He et al. 2016 (§4.2, n = 5): Conv(16, 3×3) → BN → ReLU, three stages
    of 5 :class:`BasicBlock` s with 16, 32, 64 channels (the first block of stages 2 and 3 has
    stride 2: 32×32 → 16×16 → 8×8), global average pool → Linear(64, K). Option A shortcuts, as in
    the paper's CIFAR experiments, so 0.46M parameters for K = 10 (their Table 6). Convolutions
    initialised as in He et al. 2015 (normal, fan-out, ReLU gain)."""
    layers: list[nn.Module] = [nn.Conv2d(input_shape[0], 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    c_in = 16
    for c_out in (16, 32, 64):
        for i in range(5):
            layers.append(BasicBlock(c_in, c_out, stride=2 if i == 0 and c_out != 16 else 1))
            c_in = c_out
    net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, n_classes))
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return net


def _stem_32(in_channels: int) -> nn.Conv2d:
    """The 3×3, stride-1 first convolution used for 32×32 inputs instead of ImageNet's 7×7 stride
    2 (with the max-pool after it removed, the first block sees the full 32×32 image), initialised
    as torchvision initialises its convolutions."""
    conv = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return conv


def densenet121_32(input_shape: Sequence[int], n_classes: int) -> nn.Module:
    """torchvision's DenseNet121 (no pretrained weights) adapted to 32×32 inputs: 3×3 stride-1
    stem, no initial max-pool."""
    from torchvision.models import densenet121

    net = densenet121(weights=None, num_classes=n_classes)
    net.features.conv0 = _stem_32(input_shape[0])
    net.features.pool0 = nn.Identity()
    return net


def resnet101_32(input_shape: Sequence[int], n_classes: int) -> nn.Module:
    """torchvision's ResNet101 (no pretrained weights) adapted to 32×32 inputs: 3×3 stride-1
    stem, no initial max-pool."""
    from torchvision.models import resnet101

    net = resnet101(weights=None, num_classes=n_classes)
    net.conv1 = _stem_32(input_shape[0])
    net.maxpool = nn.Identity()
    return net
