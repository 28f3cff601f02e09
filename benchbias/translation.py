"""The training loop shared by every network translator; a plugin adds only its networks and losses."""
from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import torch
from torch import nn

from benchbias.contract import Param, PairedSlices, TrainContext, Translator, UnpairedDomains
from benchbias.networks import init_weights, resnet_generator

GENERATOR_PARAMS: dict[str, Param] = {
    "filters": Param(64, "base filters of the ResNet generator", minimum=1),
    "blocks": Param(9, "residual blocks of the ResNet generator", minimum=0),
    "batch_size": Param(1, "slices per training step", minimum=1),
    "lr": Param(2e-4, "Adam learning rate", minimum=0.0),
    "beta1": Param(0.5, "Adam beta1", minimum=0.0, maximum=1.0),
    "decay_fraction": Param(
        0.5, "share of the step budget over which lr decays linearly to 0 (paper: 100 + 100 epochs)", minimum=0.0, maximum=1.0
    ),
}


def linear_decay(steps: int, decay_fraction: float):
    """lr multiplier: constant, then linearly to zero over the last ``decay_fraction`` of the steps."""
    decay_start = steps * (1.0 - decay_fraction)

    def factor(step: int) -> float:
        if step < decay_start:
            return 1.0
        return max(0.0, 1.0 - (step - decay_start) / max(1.0, steps - decay_start))

    return factor


class NetworkTranslator(Translator):
    """Owns a generator ``self.generator``, its optimisers and the step loop.

    Subclasses implement :meth:`build` (create networks and optimisers via :meth:`adam`) and
    :meth:`training_step` (one optimisation step on a batch, returning the losses)."""

    params: ClassVar[dict[str, Param]] = GENERATOR_PARAMS

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.optimizers: list[torch.optim.Optimizer] = []
        self.device = torch.device("cpu")

    def new_generator(self) -> nn.Module:
        net = resnet_generator(filters=self.hparams["filters"], blocks=self.hparams["blocks"])
        init_weights(net)
        return net.to(self.device)

    def adam(self, *modules: nn.Module) -> torch.optim.Optimizer:
        parameters = [p for m in modules for p in m.parameters()]
        optimizer = torch.optim.Adam(parameters, lr=self.hparams["lr"], betas=(self.hparams["beta1"], 0.999))
        self.optimizers.append(optimizer)
        return optimizer

    @abstractmethod
    def build(self) -> None:
        """Create ``self.generator`` (and any other networks) on ``self.device`` and their optimisers."""

    @abstractmethod
    def training_step(self, source: torch.Tensor, target: torch.Tensor, ctx: TrainContext) -> dict[str, torch.Tensor]:
        """One optimisation step. ``source``/``target`` are aligned when the method is paired."""

    def fit(self, data: PairedSlices | UnpairedDomains, ctx: TrainContext) -> None:
        if isinstance(data, PairedSlices) != self.paired:
            raise TypeError(f"{self.name} trains on {'paired' if self.paired else 'unpaired'} data, got {type(data).__name__}")
        self.device = ctx.device
        self.build()
        schedule = linear_decay(ctx.steps, self.hparams["decay_fraction"])
        schedulers = [torch.optim.lr_scheduler.LambdaLR(opt, schedule) for opt in self.optimizers]
        source = data.source.to(self.device)
        target = data.target.to(self.device)
        batch = self.hparams["batch_size"]
        source_batches = ctx.batches(len(source), batch)
        target_batches = source_batches if self.paired else ctx.batches(len(target), batch)
        for _ in ctx.loop():
            src_idx = next(source_batches)
            tgt_idx = src_idx if self.paired else next(target_batches)
            with ctx.autocast():
                losses = self.training_step(source[src_idx], target[tgt_idx], ctx)
            ctx.report(losses)
            for scheduler in schedulers:
                scheduler.step()

    @torch.inference_mode()
    def translate(self, source: torch.Tensor) -> torch.Tensor:
        self.generator.eval()
        return self.generator(source.to(self.device)).float().cpu()


def optimise(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """zero_grad, backward, step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
