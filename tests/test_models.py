"""Every architecture built by name (memkit.models.build / factory): output shapes, known
parameter counts, the 32×32 adaptations, reproducible initialisation and errors that say what to do."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from memkit import archs, models

#: A small input each architecture takes: image architectures at their smallest side (one channel,
#: H ≠ W, so that channels and the two sides are plumbed through), K = 5.
SMALL = {
    "mlp": ((1, 8, 8), {"widths": [16]}),
    "cnn": ((1, 40), {"channels": (4,), "hidden": 8}),
    "paper_cnn": ((1, 29, 30), {"channels": 8}),
    "vgg11": ((1, 32, 33), {}),
    "vgg13": ((1, 32, 33), {}),
    "resnet32": ((1, 1, 2), {}),
    "densenet121": ((1, 8, 9), {}),
    "resnet101": ((1, 1, 2), {}),
}


def test_archs_are_all_listed():
    assert set(models.ARCHS) == set(SMALL)


@pytest.mark.parametrize("arch", models.ARCHS)
def test_every_arch_maps_inputs_to_logits(arch):
    shape, options = SMALL[arch]
    net = models.build(arch, shape, 5, **options).eval()
    with torch.no_grad():
        assert net(torch.randn(2, *shape)).shape == (2, 5)


def test_cnn_takes_images_too():
    assert models.build("cnn", (3, 8, 8), 4, channels=(4,))(torch.randn(2, 3, 8, 8)).shape == (2, 4)


def test_known_parameter_counts():
    # ResNet32, K = 10: stem conv 3·16·9 + BN 2·16; stage 1: 10 convs 16·16·9; stage 2: 16·32·9 + 9 convs 32·32·9;
    # stage 3: 32·64·9 + 9 convs 64·64·9; 31 BNs (2 per channel); FC 64·10 + 10; option A shortcuts add none.
    convs = 3 * 16 * 9 + 10 * 16 * 16 * 9 + (16 * 32 + 9 * 32 * 32) * 9 + (32 * 64 + 9 * 64 * 64) * 9
    bns = 2 * (16 + 10 * 16 + 10 * 32 + 10 * 64)
    assert convs + bns + 64 * 10 + 10 == 464_154  # "0.46M", He et al. 2016, Table 6
    assert n_parameters(models.build("resnet32", (3, 32, 32), 10)) == 464_154
    # VGG11, K = 10: 8 convs (3×3, with bias) 3→64→128→256→256→512→512→512→512, a BN after each, Linear(512, 10).
    widths = [3, 64, 128, 256, 256, 512, 512, 512, 512]
    convs = sum(a * b * 9 + b for a, b in itertools.pairwise(widths))
    vgg11 = convs + 2 * sum(widths[1:]) + 512 * 10 + 10
    assert vgg11 == 9_231_114 and n_parameters(models.build("vgg11", (3, 32, 32), 10)) == vgg11


def n_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_resnet32_layout():
    net = models.build("resnet32", (3, 32, 32), 10)
    blocks = [m for m in net.modules() if isinstance(m, archs.BasicBlock)]
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert len(blocks) == 15 and len(convs) == 31  # 32 weighted layers with the final Linear
    assert [b.conv2.out_channels for b in blocks[::5]] == [16, 32, 64]
    assert [b.stride for b in blocks] == [1] * 5 + [2] + [1] * 4 + [2] + [1] * 4
    features = net[:-1](torch.randn(2, 3, 32, 32))
    assert features.shape == (2, 64)


@pytest.mark.parametrize(("arch", "n_classes"), [("densenet121", 10), ("resnet101", 100)])
def test_32x32_architectures(arch, n_classes):
    net = models.build(arch, (3, 32, 32), n_classes).eval()
    stem = net.features.conv0 if arch == "densenet121" else net.conv1
    assert stem.kernel_size == (3, 3) and stem.stride == (1, 1)
    assert isinstance(net.features.pool0 if arch == "densenet121" else net.maxpool, nn.Identity)
    with torch.no_grad():
        assert net(torch.randn(2, 3, 32, 32)).shape == (2, n_classes)


def test_paper_cnn():
    model = models.build("paper_cnn", (3, 32, 32), 10)
    assert model(torch.randn(4, 3, 32, 32)).shape == (4, 10)
    assert model[1].in_features == 200  # 32 → crop 28 → conv 24 → pool 8 → conv 4 → pool 1 pixel × 200 channels
    assert models.needs_loop(lambda: model)
    assert not models.needs_loop(models.factory("mlp", (3, 32, 32), 10, widths=[8], dropout=0.5))


@pytest.mark.parametrize("arch", ["mlp", "cnn", "paper_cnn", "vgg11", "resnet32", "resnet101"])
def test_same_seed_same_weights(arch):
    shape, options = SMALL[arch]
    make = models.factory(arch, shape, 5, **options)
    torch.manual_seed(3)
    first = make().state_dict()
    torch.manual_seed(3)
    second = models.build(arch, shape, 5, **options).state_dict()  # the factory drew no random numbers
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], v) for k, v in make().state_dict().items())  # a new draw without a seed


@pytest.mark.parametrize(
    ("arch", "shape", "options", "message"),
    [
        ("vgg", (3, 32, 32), {}, "unknown architecture 'vgg'; use one of mlp, cnn"),
        ("mlp", (3, 32, 32), {}, r"mlp needs widths=\.\.\. \(mlp takes widths"),
        ("mlp", (3, 32, 32), {"widths": [4], "depth": 2}, "unknown option.*depth for mlp: mlp takes widths"),
        ("cnn", (1, 40), {"width": 4}, "cnn takes channels, hidden, kernel_size"),
        ("resnet32", (3, 32, 32), {"shortcut": "B"}, "resnet32 takes no options"),
        ("cnn", (40,), {}, "use 'mlp'"),
        ("densenet121", (1, 40), {}, r"takes images \(C, H, W\).*use 'mlp' or 'cnn'"),
        ("vgg11", (1, 28, 28), {}, "at least 32×32.*pad them, or use 'cnn' or 'resnet32'"),
        ("vgg13", (1, 31, 40), {}, "at least 32×32"),
        ("densenet121", (3, 7, 8), {}, "at least 8×8"),
        ("paper_cnn", (1, 28, 28), {}, "at least 29×29"),
        ("resnet32", (3, 32, 32), {"n_classes": 0}, "n_classes"),
    ],
)
def test_errors_say_what_to_do(arch, shape, options, message):
    n_classes = options.pop("n_classes", 10)
    with pytest.raises(ValueError, match=message):
        models.factory(arch, shape, n_classes, **options)
