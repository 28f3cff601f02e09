"""The training loop shared by every network translator; a plugin adds only its networks and losses.

:class:`NetworkTranslator` owns the generator, the optimisers, the lr schedule and the step loop;
:class:`AdversarialTranslator` adds the PatchGAN discriminators, the GAN loss and the history pool
that the GAN-based baselines (gan, cyclegan, condgan, pix2pix) combine.
"""
from __future__ import annotations

import contextlib
from abc import abstractmethod
from typing import Any, ClassVar, Iterable, Iterator

import torch
from torch import nn

from benchbias.contract import PairedSlices, Param, TrainContext, Translator, UnpairedDomains
from benchbias.image_pool import ImagePool
from benchbias.losses import GAN_MODES, GANLoss
from benchbias.networks import init_weights, patch_discriminator, resnet_generator

GENERATOR_PARAMS: dict[str, Param] = {
    "filters": Param(64, "base filters of the ResNet generator", minimum=1),
    "blocks": Param(9, "residual blocks of the ResNet generator", minimum=0),
    "batch_size": Param(1, "slices per training step", minimum=1),
    "lr": Param(2e-4, "Adam learning rate", minimum=0.0),
    "beta1": Param(0.5, "Adam beta1", minimum=0.0, maximum=1.0),
    "decay_fraction": Param(
        0.5, "share of the step budget over which lr decays linearly to 0 (paper: 100 + 100 epochs)", minimum=0.0, maximum=1.0
    ),
    # The paper's generators all had Dropout(0.5) in every residual block (no run passed --no_dropout),
    # and its test.py never called eval(): dropout stayed on while the holdout was translated.
    "dropout": Param(0.0, "dropout in every residual block of the generator (the paper's runs: 0.5)", minimum=0.0, maximum=0.95),
    "dropout_at_translation": Param(False, "keep dropout active when translating the holdout (the paper's test.py did)"),
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
        self.rng = torch.Generator().manual_seed(0)

    def place(self, net: nn.Module) -> nn.Module:
        """``net`` on the training device. On the CPU its conv weights are stored channels-last, which
        oneDNN runs 3-15% faster for these small networks (the same arithmetic in another layout)."""
        if self.device.type == "cpu":
            return net.to(self.device, memory_format=torch.channels_last)
        return net.to(self.device)

    def new_generator(self) -> nn.Module:
        net = resnet_generator(filters=self.hparams["filters"], blocks=self.hparams["blocks"], dropout=self.hparams["dropout"])
        init_weights(net)
        return self.place(net)

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

    def setup(self, ctx: TrainContext) -> None:
        """Fresh networks and optimisers for a training run under ``ctx`` (called by :meth:`fit`)."""
        self.device = ctx.device
        self.rng = ctx.generator
        self.optimizers = []
        self.build()

    def fit(self, data: PairedSlices | UnpairedDomains, ctx: TrainContext) -> None:
        if isinstance(data, PairedSlices) != self.paired:
            raise TypeError(f"{self.name} trains on {'paired' if self.paired else 'unpaired'} data, got {type(data).__name__}")
        self.setup(ctx)
        schedule = linear_decay(ctx.steps, self.hparams["decay_fraction"])
        schedulers = [torch.optim.lr_scheduler.LambdaLR(opt, schedule) for opt in self.optimizers]
        source = data.source.to(self.device)
        target = data.target.to(self.device)
        batch = self.hparams["batch_size"]
        source_batches = ctx.batches(len(source), batch)
        target_batches = source_batches if self.paired else ctx.batches(len(target), batch)
        for _ in ctx.loop():
            # Index batches are drawn on the host; copy them without waiting for the device.
            src_idx = next(source_batches).to(self.device, non_blocking=True)
            tgt_idx = src_idx if self.paired else next(target_batches).to(self.device, non_blocking=True)
            with ctx.autocast():
                losses = self.training_step(source[src_idx], target[tgt_idx], ctx)
            ctx.report(losses)
            for scheduler in schedulers:
                scheduler.step()

    @torch.inference_mode()
    def translate(self, source: torch.Tensor) -> torch.Tensor:
        # Instance norm keeps no running statistics, so train mode differs from eval only in dropout.
        self.generator.train(self.hparams["dropout_at_translation"])
        return self.generator(source.to(self.device)).float().cpu()


def optimise(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """zero_grad, backward, step; backward and step run outside autocast (only forwards belong in it)."""
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(loss.device.type, enabled=False):
        loss.backward()
        optimizer.step()


def set_requires_grad(nets: nn.Module | Iterable[nn.Module], requires_grad: bool) -> None:
    """Switch gradient tracking of every parameter of ``nets`` on or off."""
    for net in [nets] if isinstance(nets, nn.Module) else nets:
        for parameter in net.parameters():
            parameter.requires_grad_(requires_grad)


@contextlib.contextmanager
def frozen(*nets: nn.Module) -> Iterator[None]:
    """Within the block ``nets`` pass gradients to their inputs but compute none for their own weights
    (the generator step of a GAN: the discriminator is a fixed critic); trainable again afterwards."""
    set_requires_grad(nets, False)
    try:
        yield
    finally:
        set_requires_grad(nets, True)


# --------------------------------------------------------------------------------------------
# Adversarial translators
# --------------------------------------------------------------------------------------------

DISCRIMINATOR_PARAMS: dict[str, Param] = {
    "disc_filters": Param(64, "base filters of the PatchGAN discriminator", minimum=1),
    "disc_layers": Param(3, "conv blocks of the PatchGAN discriminator after its stem (3: 70x70 patches)", minimum=1),
}


def adversarial_params(gan_mode: str, **extra: Param) -> dict[str, Param]:
    """Generator + discriminator parameters, ``gan_mode`` with this method's default, and ``extra``."""
    return {
        **GENERATOR_PARAMS,
        **DISCRIMINATOR_PARAMS,
        "gan_mode": Param(gan_mode, "GAN loss: 'vanilla' (log-loss, as Table 1) or 'lsgan' (least squares)", choices=GAN_MODES),
        **extra,
    }


class AdversarialTranslator(NetworkTranslator):
    """A :class:`NetworkTranslator` with PatchGAN discriminators and a GAN loss.

    Subclasses set ``params = adversarial_params(<gan_mode default>, ...)``, create their
    discriminators with :meth:`new_discriminator` and combine :meth:`adversarial_loss` (generator
    side, inside ``with frozen(disc):``) and :meth:`discriminator_loss` with their other terms."""

    params: ClassVar[dict[str, Param]] = adversarial_params("vanilla")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.gan = GANLoss(self.hparams["gan_mode"])

    def new_discriminator(self, in_channels: int = 1) -> nn.Module:
        net = patch_discriminator(in_channels, filters=self.hparams["disc_filters"], layers=self.hparams["disc_layers"])
        init_weights(net)
        return self.place(net)

    def new_pool(self, size: int) -> ImagePool:
        """A history pool with its own generator, seeded from the run's (deterministic per seed)."""
        seed = int(torch.randint(2**62, (), generator=self.rng))
        return ImagePool(size, torch.Generator().manual_seed(seed))

    def adversarial_loss(self, disc: nn.Module, fake: torch.Tensor) -> torch.Tensor:
        """Generator side: the loss of ``disc`` calling ``fake`` real."""
        return self.gan.generator(disc(fake))

    def discriminator_loss(self, disc: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Discriminator side, halved: ``real`` called real, ``fake`` (detached) called fake.

        Both go through ``disc`` in one batch: the PatchGAN normalises each image on its own
        (instance norm), so this equals two separate passes at a lower cost."""
        predictions = disc(torch.cat([real, fake.detach().to(real.dtype)]))
        real_prediction, fake_prediction = predictions.split([len(real), len(fake)])
        return self.gan.discriminator(real_prediction, fake_prediction)
