"""Several copies of a convolutional network as one network of grouped convolutions.

Copy ``i`` of a stack owns channel block ``i`` of every activation: a convolution with ``groups = g``
becomes one with ``groups = copies * g`` over ``copies`` times the channels, a group norm of ``g``
groups one of ``copies * g`` (instance norm becomes a group norm of one channel per group, see
:func:`~benchbias.nets.networks.layout_safe_norms`), and padding and pointwise activations act on each
channel alone, so they need no change. One call then runs every
copy on its own image, ``(N, copies * C, H, W)`` in and out, with the copies' weights stacked along a
leading axis and viewed as the grouped weights (no copy).

This is the arithmetic ``torch.func.vmap`` would turn the convolutions into, without the layout
copies vmap's batching rules add around each of them: on a CPU, 1.1-1.4x faster per step for the
baselines' small networks. Networks with any other layer (a linear layer, batch norm, a forward that
concatenates channels) are not grouped: :class:`~benchbias.nets.translation.ModelStack` falls back to
vmap for them.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from benchbias.nets.networks import ResidualBlock

# Layers that act on every channel of every image alone: unchanged in a grouped network.
CHANNELWISE = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.ReflectionPad2d, nn.ReplicationPad2d, nn.ZeroPad2d, nn.Dropout, nn.Identity)
# Containers whose forward only chains or adds their children's outputs.
CHAINING = (ResidualBlock,)


def grouped_network(net: nn.Module, copies: int) -> nn.Module | None:
    """``net``'s layout for ``copies`` copies side by side (its parameters are placeholders: see
    :func:`grouped_shapes`), or None when ``net`` has a layer this cannot group."""
    if isinstance(net, CHAINING) or (isinstance(net, nn.Sequential) and type(net).forward is nn.Sequential.forward):
        grouped = copy.copy(net)
        grouped._modules = {}
        for name, child in net.named_children():
            child_grouped = grouped_network(child, copies)
            if child_grouped is None:
                return None
            grouped._modules[name] = child_grouped
        return grouped
    if any(True for _ in net.children()):
        return None
    return _grouped_layer(net, copies)


def _grouped_layer(layer: nn.Module, copies: int) -> nn.Module | None:
    if isinstance(layer, CHANNELWISE):
        return copy.deepcopy(layer)
    if any(b.numel() for b in layer.buffers()):
        return None
    if type(layer) is nn.Conv2d:
        return nn.Conv2d(
            layer.in_channels * copies,
            layer.out_channels * copies,
            layer.kernel_size,
            layer.stride,
            layer.padding,
            layer.dilation,
            layer.groups * copies,
            layer.bias is not None,
            layer.padding_mode,
            device="meta",
        )
    if type(layer) is nn.ConvTranspose2d:
        return nn.ConvTranspose2d(
            layer.in_channels * copies,
            layer.out_channels * copies,
            layer.kernel_size,
            layer.stride,
            layer.padding,
            layer.output_padding,
            layer.groups * copies,
            layer.bias is not None,
            layer.dilation,
            layer.padding_mode,
            device="meta",
        )
    if type(layer) is nn.GroupNorm:
        return nn.GroupNorm(layer.num_groups * copies, layer.num_channels * copies, layer.eps, layer.affine, device="meta")
    if type(layer) is nn.InstanceNorm2d:  # as a group norm: see networks.layout_safe_norms
        return nn.GroupNorm(layer.num_features * copies, layer.num_features * copies, layer.eps, layer.affine, device="meta")
    return None


def grouped_shapes(grouped: nn.Module) -> dict[str, torch.Size]:
    """The shape of every parameter of a grouped network: a stacked weight ``(copies, *shape)``
    reshapes to it with copy ``i`` in block ``i`` (the leading dimension of conv weights and of
    biases and norm weights is the one that is grouped)."""
    return {name: p.shape for name, p in grouped.named_parameters()}


def stacked_parameter(weights: torch.Tensor) -> torch.Tensor:
    """``weights`` ``(copies, *shape)`` laid out so that their grouped view is a view: conv weights
    channels-last, as oneDNN runs these small convolutions fastest."""
    if weights.dim() != 5:
        return weights.detach().clone().contiguous()
    copies, out, inner, rows, columns = weights.shape
    laid_out = torch.empty((copies, out, rows, columns, inner), dtype=weights.dtype, device=weights.device).permute(0, 1, 4, 2, 3)
    return laid_out.copy_(weights.detach())


def to_grouped(x: torch.Tensor) -> torch.Tensor:
    """``(copies, N, C, H, W)`` to ``(N, copies * C, H, W)``, channels-last."""
    copies, n = x.shape[:2]
    return x.transpose(0, 1).reshape(n, copies * x.shape[2], *x.shape[3:]).contiguous(memory_format=torch.channels_last)


def from_grouped(y: torch.Tensor, copies: int) -> torch.Tensor:
    """``(N, copies * C, H, W)`` back to ``(copies, N, C, H, W)``."""
    return y.reshape(y.shape[0], copies, y.shape[1] // copies, *y.shape[2:]).transpose(0, 1)
