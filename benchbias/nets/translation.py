"""The training loop shared by every network translator; a plugin adds only its networks and losses.

:class:`NetworkTranslator` owns the generator, the optimisers, the lr schedule and the step loop;
:class:`AdversarialTranslator` adds the PatchGAN discriminators, the GAN loss and the history pool
that the GAN-based baselines (gan, cyclegan, condgan, pix2pix) combine.

**Training models together.** A sweep trains one model per target fraction, each a few thousand
steps of a small network: on a CPU most of a step's time is spent dispatching operators, not
computing. A translator that sets ``trains_together = True`` can train several such models as one
program (:meth:`NetworkTranslator.fit_together`): every network becomes a :class:`ModelStack` (the
copies' weights stacked, one call of grouped convolutions runs them all), images carry a leading model
axis ``(models, N, C, H, W)``, and each loss is a vector with one value per model whose sum is
minimised. Adam works element by element, so one optimiser over stacked weights takes each copy's
own step: every model trains as it would alone, up to float rounding. A plugin opts in by writing its
``training_step`` for both shapes: images concatenated on channels at ``dim=-3`` and batches at
``dim=-4``, losses from :func:`l1_loss` and :class:`~benchbias.nets.losses.GANLoss` (which reduce the last
four dimensions), history pools from :meth:`AdversarialTranslator.new_pool`.
"""

from __future__ import annotations

import contextlib
import copy
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from benchbias.foundation.contract import PairedSlices, Param, TrainContext, Translator, UnpairedDomains
from benchbias.nets.grouping import from_grouped, grouped_network, grouped_shapes, stacked_parameter, to_grouped
from benchbias.nets.image_pool import ImagePool, PoolStack
from benchbias.nets.losses import GAN_MODES, GANLoss, mean_per_model
from benchbias.nets.networks import init_weights, layout_safe_norms, patch_discriminator, resnet_generator

GENERATOR_PARAMS: dict[str, Param] = {
    "filters": Param(64, "base filters of the ResNet generator", minimum=1),
    "blocks": Param(9, "residual blocks of the ResNet generator", minimum=0),
    "batch_size": Param(1, "slices per training step", minimum=1),
    "lr": Param(2e-4, "Adam learning rate", minimum=0.0),
    "beta1": Param(0.5, "Adam beta1", minimum=0.0, maximum=1.0),
    "decay_fraction": Param(0.5, "share of the step budget over which lr decays linearly to 0 (paper: 100 + 100 epochs)", minimum=0.0, maximum=1.0),
    # The paper's generators all had Dropout(0.5) in every residual block (no run passed --no_dropout),
    # and its test.py never called eval(): dropout stayed on while the holdout was translated.
    "dropout": Param(0.0, "dropout in every residual block of the generator (the paper's runs: 0.5)", minimum=0.0, maximum=0.95),
    "dropout_at_translation": Param(False, "keep dropout active when translating the holdout (the paper's test.py did)"),
}
# For paired methods: the CycleGAN code's --serial_batches, which the paper's paired runs passed.
SERIAL_BATCHES = Param(False, "take every epoch's batches in the pairs' fixed order (the paper's paired runs); false: reshuffled each epoch")


def linear_decay(steps: int, decay_fraction: float):
    """lr multiplier: constant, then linearly to zero over the last ``decay_fraction`` of the steps."""
    decay_start = steps * (1.0 - decay_fraction)

    def factor(step: int) -> float:
        if step < decay_start:
            return 1.0
        return max(0.0, 1.0 - (step - decay_start) / max(1.0, steps - decay_start))

    return factor


class ModelStack(nn.Module):
    """``copies`` copies of a network trained side by side: their weights stacked along a leading
    axis, and one call runs copy ``i`` on ``x[i]`` for every ``i``. A network of convolutions, instance
    norms and pointwise layers runs as one network of grouped convolutions (:mod:`.grouping`); any
    other runs through ``torch.func.vmap`` over its functional form.

    The copies start from the same weights, as the models of a sweep do (the runner seeds every
    fraction's model alike). :meth:`copy` returns copy ``i`` as an ordinary module."""

    def __init__(self, net: nn.Module, copies: int) -> None:
        super().__init__()
        if any(b.numel() for b in net.buffers()):
            raise TypeError(f"{type(net).__name__} keeps buffers (running statistics?): it cannot be trained in a model stack")
        params, _ = stack_module_state([net] * copies)
        self.copies = copies
        self.names = list(params)
        self.shapes = {name: net.get_parameter(name).shape for name in self.names}
        self._template = [net]  # in a list: not a submodule, so its own weights are not trained
        grouped = grouped_network(net, copies)
        self.grouped = grouped is not None
        if grouped is not None:  # trains the grouped network's weights; the stacked ones are views
            for name, shape in grouped_shapes(grouped).items():
                owner, _, leaf = name.rpartition(".")
                grouped.get_submodule(owner)._parameters[leaf] = nn.Parameter(stacked_parameter(params[name]).view(shape))
            self.net = grouped
        else:
            self.weights = nn.ParameterList([nn.Parameter(params[name].detach().clone()) for name in self.names])
            self._vmapped = vmap(lambda weights, x: functional_call(net, weights, (x,)), randomness="different")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 1 or x.shape[0] != self.copies:
            raise ValueError(f"a stack of {self.copies} models takes inputs with a leading model axis of {self.copies}, got shape {tuple(x.shape)}")
        if not self.grouped:
            return self._vmapped(dict(zip(self.names, self.weights)), x)
        if x.dim() != 5:
            raise ValueError(f"a stack of {self.copies} image networks takes (models, N, C, H, W) inputs, got shape {tuple(x.shape)}")
        return from_grouped(self.net(to_grouped(x)), self.copies)

    def stacked(self, grads: bool = False) -> dict[str, torch.Tensor | None]:
        """Every weight of the copies as ``(copies, *shape)`` (views of the trained parameters), or with
        ``grads`` their gradients."""
        trained = dict(self.net.named_parameters()) if self.grouped else dict(zip(self.names, self.weights))
        if grads:
            return {name: None if p.grad is None else p.grad.reshape(self.copies, *self.shapes[name]) for name, p in trained.items()}
        return {name: p.view(self.copies, *self.shapes[name]) for name, p in trained.items()}

    def train(self, mode: bool = True) -> ModelStack:
        self._template[0].train(mode)
        return super().train(mode)

    def copy(self, i: int) -> nn.Module:
        """Copy ``i`` as an ordinary module with its trained weights."""
        net = copy.deepcopy(self._template[0])
        with torch.no_grad():
            for name, weights in self.stacked().items():
                net.get_parameter(name).copy_(weights[i])
        return net


class NetworkTranslator(Translator):
    """Owns a generator ``self.generator``, its optimisers and the step loop.

    Subclasses implement :meth:`build` (create networks and optimisers via :meth:`adam`) and
    :meth:`training_step` (one optimisation step on a batch, returning the losses). Networks built
    elsewhere go through :meth:`place`. Set ``trains_together = True`` when ``training_step`` also
    works on a model stack (see the module's docstring)."""

    params: ClassVar[dict[str, Param]] = GENERATOR_PARAMS
    trains_together: ClassVar[bool] = False

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.optimizers: list[torch.optim.Optimizer] = []
        self.device = torch.device("cpu")
        self.rng = torch.Generator().manual_seed(0)
        self.rngs: list[torch.Generator] = [self.rng]  # one per model trained together

    @property
    def copies(self) -> int:
        """Models this translator trains at once (1 outside :meth:`fit_together`)."""
        return len(self.rngs)

    def place(self, net: nn.Module) -> nn.Module:
        """``net`` on the training device (a :class:`ModelStack` of it when training models together).
        On the CPU its conv weights are stored channels-last, which oneDNN runs 3-15% faster for
        these small networks (the same arithmetic in another layout), and its instance norms run as
        group norms of one channel per group (:func:`~benchbias.nets.networks.layout_safe_norms`:
        the same function, with correct gradients for a channels-last batch of one image)."""
        if self.device.type == "cpu":
            net = layout_safe_norms(net.to(self.device, memory_format=torch.channels_last))
        else:
            net = net.to(self.device)
        return ModelStack(net, self.copies) if self.copies > 1 else net

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

    def setup(self, ctx: TrainContext, contexts: Sequence[TrainContext] = ()) -> None:
        """Fresh networks and optimisers for a training run under ``ctx`` (called by :meth:`fit`), or
        for one model per context of ``contexts`` trained together (called by :meth:`fit_together`)."""
        self.device = ctx.device
        self.rngs = [c.generator for c in contexts] or [ctx.generator]
        self.rng = self.rngs[0]
        self.optimizers = []
        self.build()

    def fit(self, data: PairedSlices | UnpairedDomains, ctx: TrainContext) -> None:
        self._train([data], [ctx])

    def fit_together(self, data: Sequence[PairedSlices | UnpairedDomains], contexts: Sequence[TrainContext]) -> list[NetworkTranslator]:
        """Train one model per ``(data[i], contexts[i])`` as one program and return them as separate
        translators; model ``i`` trains as ``fit(data[i], contexts[i])`` would (to float rounding). The
        contexts share their step count, device and precision; each keeps its own batch stream."""
        if not self.trains_together:
            raise TypeError(f"{self.name} does not train models together (trains_together is False)")
        if len(data) != len(contexts) or not data:
            raise ValueError(f"fit_together needs one context per data set, got {len(data)} and {len(contexts)}")
        self._train(data, contexts)
        return [self._model(i) for i in range(len(data))] if len(data) > 1 else [self]

    def _train(self, data: Sequence[PairedSlices | UnpairedDomains], contexts: Sequence[TrainContext]) -> None:
        for d in data:
            if isinstance(d, PairedSlices) != self.paired:
                raise TypeError(f"{self.name} trains on {'paired' if self.paired else 'unpaired'} data, got {type(d).__name__}")
        ctx = contexts[0]
        if any((c.steps, c.device, c.amp) != (ctx.steps, ctx.device, ctx.amp) for c in contexts):
            raise ValueError("models trained together share their step count, device and precision")
        self.setup(ctx, contexts if len(contexts) > 1 else ())
        schedule = linear_decay(ctx.steps, self.hparams["decay_fraction"])
        schedulers = [torch.optim.lr_scheduler.LambdaLR(opt, schedule) for opt in self.optimizers]
        batch = self.hparams["batch_size"]
        sources = Batches([d.source for d in data], contexts, batch, self.device, serial=bool(self.hparams.get("serial_batches", False)))
        # Paired: the targets of the very slices drawn (one index stream); unpaired: their own stream.
        targets = Batches([d.target for d in data], contexts, batch, self.device, draws=not self.paired)
        for _ in lockstep([c.loop() for c in contexts]):
            source_index = sources.draw()
            target_index = source_index if self.paired else targets.draw()
            with ctx.autocast():
                losses = self.training_step(sources.take(source_index), targets.take(target_index), ctx)
            if len(contexts) == 1:
                ctx.report(losses)
            else:
                for i, c in enumerate(contexts):
                    c.report({name: value[i] if value.dim() else value for name, value in losses.items()})
            for scheduler in schedulers:
                scheduler.step()

    def _model(self, i: int) -> NetworkTranslator:
        """Model ``i`` of those just trained together, as a translator of its own."""
        model = copy.copy(self)
        for name, value in vars(self).items():
            if isinstance(value, ModelStack):
                setattr(model, name, value.copy(i))
        model.optimizers, model.rngs = [], [self.rngs[i]]
        model.rng = self.rngs[i]
        return model

    @torch.inference_mode()
    def translate(self, source: torch.Tensor) -> torch.Tensor:
        # Instance norm keeps no running statistics, so train mode differs from eval only in dropout.
        self.generator.train(self.hparams["dropout_at_translation"])
        return self.generator(source.to(self.device)).float().cpu()


def lockstep(loops: list[Iterator[int]]) -> Iterator[int]:
    """The steps of several :meth:`TrainContext.loop` iterators advanced together, each run to its end
    (where it reports its last step; ``zip`` would stop the others one step short)."""
    for steps in zip(*loops):
        yield steps[0]
    for loop in loops[1:]:
        next(loop, None)


class Batches:
    """Each model's seeded stream of index batches (:meth:`TrainContext.batches`) over its images,
    and the images of a draw: ``(N, C, H, W)`` for one model, ``(models, N, C, H, W)`` for several."""

    def __init__(
        self, images: Sequence[torch.Tensor], contexts: Sequence[TrainContext], batch: int, device: torch.device, draws: bool = True, serial: bool = False
    ) -> None:
        # draws=False: indexed by another's draws (a paired method's targets by their sources').
        self.streams = [c.batches(len(x), batch, serial) for x, c in zip(images, contexts)] if draws else []
        self.device = device
        sizes = {len(x) for x in images}
        # Models whose image sets have one size share one stacked tensor, indexed in one operation.
        self.images = torch.stack(list(images)).to(device) if len(images) > 1 and len(sizes) == 1 else [x.to(device) for x in images]

    def draw(self) -> list[torch.Tensor]:
        # Drawn on the host; copied without waiting for the device.
        return [next(stream).to(self.device, non_blocking=True) for stream in self.streams]

    def take(self, index: list[torch.Tensor]) -> torch.Tensor:
        if len(index) == 1:
            return self.images[0][index[0]]
        if isinstance(self.images, torch.Tensor):
            return self.images[torch.arange(len(index), device=self.device)[:, None], torch.stack(index)]
        return torch.stack([x[i] for x, i in zip(self.images, index)])


def l1_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference per model: a scalar for ``(N, C, H, W)``, one value per model for
    ``(models, N, C, H, W)`` (as ``F.l1_loss`` for one model)."""
    return mean_per_model((output - target).abs())


def optimise(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """zero_grad, backward, step; backward and step run outside autocast (only forwards belong in it).
    ``loss`` holds one value per model when models train together: their sum is minimised, which
    gives each model its own loss's gradient."""
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(loss.device.type, enabled=False):
        loss.sum().backward()
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

    def new_pool(self, size: int) -> ImagePool | PoolStack:
        """A history pool with its own generator, seeded from the run's (deterministic per seed); when
        models train together, one such pool per model."""
        pools = [ImagePool(size, torch.Generator().manual_seed(int(torch.randint(2**62, (), generator=rng)))) for rng in self.rngs]
        return pools[0] if len(pools) == 1 else PoolStack(pools)

    def adversarial_loss(self, disc: nn.Module, fake: torch.Tensor) -> torch.Tensor:
        """Generator side: the loss of ``disc`` calling ``fake`` real."""
        return self.gan.generator(disc(fake))

    def discriminator_loss(self, disc: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Discriminator side, halved: ``real`` called real, ``fake`` (detached) called fake.

        Both go through ``disc`` in one batch: the PatchGAN normalises each image on its own
        (instance norm), so this equals two separate passes at a lower cost."""
        predictions = disc(torch.cat([real, fake.detach().to(real.dtype)], -4))
        real_prediction, fake_prediction = predictions.split([real.shape[-4], fake.shape[-4]], -4)
        return self.gan.discriminator(real_prediction, fake_prediction)
