"""Networks shared by the baseline plugins, built from MONAI blocks where MONAI has them."""

from __future__ import annotations

import torch
from monai.networks.blocks import Convolution
from monai.networks.nets import PatchDiscriminator
from torch import nn


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with reflection padding and instance norm, plus the identity; with
    ``dropout`` > 0, dropout after the first ReLU (the reference code's ``use_dropout``)."""

    def __init__(self, channels: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
            nn.ReLU(inplace=True),
            *([nn.Dropout(dropout)] if dropout > 0 else []),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def resnet_generator(in_channels: int = 1, out_channels: int = 1, filters: int = 64, blocks: int = 9, dropout: float = 0.0) -> nn.Module:
    """The CycleGAN ResNet generator (Johnson et al.): reflection-padded 7x7 stem, two stride-2
    downsamplings, ``blocks`` residual blocks (each with ``dropout``), two transposed-conv
    upsamplings, 7x7 head and tanh. Input height and width must be divisible by 4."""
    layers: list[nn.Module] = [
        nn.ReflectionPad2d(3),
        nn.Conv2d(in_channels, filters, 7),
        nn.InstanceNorm2d(filters),
        nn.ReLU(inplace=True),
    ]
    channels = filters
    for _ in range(2):
        layers += [nn.Conv2d(channels, channels * 2, 3, stride=2, padding=1), nn.InstanceNorm2d(channels * 2), nn.ReLU(inplace=True)]
        channels *= 2
    layers += [ResidualBlock(channels, dropout) for _ in range(blocks)]
    for _ in range(2):
        layers += [
            nn.ConvTranspose2d(channels, channels // 2, 3, stride=2, padding=1, output_padding=1),
            nn.InstanceNorm2d(channels // 2),
            nn.ReLU(inplace=True),
        ]
        channels //= 2
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(channels, out_channels, 7), nn.Tanh()]
    return nn.Sequential(*layers)


def patch_discriminator(in_channels: int = 1, filters: int = 64, layers: int = 3) -> nn.Module:
    """The PatchGAN discriminator of pix2pix / CycleGAN ("basic", 70x70 receptive field at ``layers=3``):
    a 4x4 stride-2 conv + LeakyReLU(0.2); ``layers`` blocks of 4x4 conv + instance norm + LeakyReLU(0.2)
    doubling the filters, stride 2 except the last (stride 1); a 4x4 stride-1 conv to one channel of
    per-patch logits. Every conv has a bias (as in the reference with instance norm), padding 1.

    Built from MONAI's ``PatchDiscriminator`` (which returns every intermediate feature map) and
    flattened into a ``Sequential`` that returns only the logits, ``(N, 1, h, w)``. Unlike the
    reference, MONAI does not cap the filters at 8x ``filters``: identical for ``layers <= 3``."""
    net = PatchDiscriminator(
        spatial_dims=2,
        channels=filters,
        in_channels=in_channels,
        out_channels=1,
        num_layers_d=layers,
        kernel_size=4,
        activation=("LEAKYRELU", {"negative_slope": 0.2}),
        norm="INSTANCE",
        bias=True,
        padding=1,
    )
    return nn.Sequential(*net.children())


def impartial_cnn(image_size: int | tuple[int, int], channels: tuple[int, ...] = (16, 32, 64, 128), classes: int = 2, padding: int = 1) -> nn.Module:
    """The paper's impartial classifier: 4 stride-2 3x3 conv layers with ReLU, one fully connected layer
    with no non-linearity; returns logits (softmax is applied by the caller). ``image_size``: an int
    (square) or (rows, columns); ``padding``: zero padding of each conv (the notebook's CNN: 0)."""
    convs = [
        Convolution(spatial_dims=2, in_channels=c_in, out_channels=c_out, strides=2, kernel_size=3, act="RELU", norm=None, padding=padding)
        for c_in, c_out in zip((1, *channels[:-1]), channels)
    ]
    rows, columns = (image_size, image_size) if isinstance(image_size, int) else image_size
    for _ in channels:
        rows, columns = (rows + 2 * padding - 3) // 2 + 1, (columns + 2 * padding - 3) // 2 + 1
    if rows < 1 or columns < 1:
        raise ValueError(f"impartial_cnn: {image_size} is too small for {len(channels)} stride-2 layers")
    return nn.Sequential(*convs, nn.Flatten(), nn.Linear(channels[-1] * rows * columns, classes))


def layout_safe_norms(net: nn.Module) -> nn.Module:
    """``net`` with each instance norm that keeps no running statistics replaced, in place, by the same
    function as a group norm of one channel per group (any affine weights kept).

    For networks stored channels-last on a CPU: there torch's instance norm returns wrong input
    gradients for a batch of one image (measured with torch 2.14: relative errors above 1 in the
    weight gradients of a ResNet generator against float64; a ``(1, C, H, W)`` tensor is laid out
    alike in both formats, and the batch-norm kernel that instance norm calls on a reshaped view
    takes its gradient in the wrong one). Group norm has a channels-last kernel of its own and is
    exact there. ``tests/test_translators.py`` keeps this as a canary."""
    for module in list(net.modules()):
        for name, child in list(module.named_children()):
            if type(child) is nn.InstanceNorm2d and not child.track_running_stats:
                norm = nn.GroupNorm(child.num_features, child.num_features, child.eps, child.affine, device=child.weight.device if child.affine else None)
                if child.affine:
                    norm.load_state_dict(child.state_dict())
                setattr(module, name, norm)
    return net


def init_weights(module: nn.Module, gain: float = 0.02) -> None:
    """Normal(0, 0.02) initialisation of conv/linear weights, as in pix2pix / CycleGAN."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
