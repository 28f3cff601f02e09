"""A second judge: any timm image classifier (timm's small ``test_resnet`` with group norm by default:
370k parameters, 0.76 MB of float16 weights), trained from scratch.

Why it exists: the benchmark's verdict (does a translator hallucinate or erase tumors?) rests on one
small CNN, ``impartial-cnn``. A judge of another architecture (residual blocks, batch norm, global
pooling instead of 4 plain stride-2 convs and a linear layer on the flattened map), trained on the
same real target slices, lets a reviewer see whether that verdict depends on the one CNN that
happens to be the judge.

Trained as ``impartial-cnn`` is: balanced batches (half tumor), cross-entropy, random flips and, by
default, the benchmark's random intensity, contrast, blur and noise perturbations
(:class:`benchbias.judges.robustness.IntensityAugmentation`), so that a global drift of a translation's
brightness or sharpness is not read as a tumor. AdamW with a cosine learning-rate decay to zero over
the step budget, so the stored weights are the end of a settled run rather than of a noisy one.

Opt-in adversarial training (``adversarial_eps`` > 0), as ``impartial-cnn``'s: in each batch a share of
each class is replaced by PGD examples made with the judge's own weights toward the wrong call
(:func:`benchbias.api.with_adversarial_examples`), so that a method author holding the weights cannot
turn its calls with small changes. Off by default: the judge then trains exactly as before.

The network is ``timm.create_model(model, pretrained=False, in_chans=1, num_classes=2)``: no
pretrained weights (nothing is downloaded), any input size the architecture accepts (global pooling),
randomly initialised from the run's seed."""

import difflib

import torch
import torch.nn.functional as F

from benchbias.api import Classifier, IntensityAugmentation, Param, ParamError, hookimpl, with_adversarial_examples

# Shown when a model name is unknown: small backbones that train on 32x32 slices on a CPU.
SUGGESTED_MODELS = ("resnet10t", "resnet18", "regnetx_002", "mobilenetv3_small_100", "efficientnet_b0")


def random_flips(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Flip each image left-right and/or up-down with probability 1/2 (tumor labels are unchanged).
    As ``impartial-cnn``'s; kept in this file so that the judge's code identity covers it."""
    flips = torch.rand(2, len(images), generator=generator).to(images.device) < 0.5
    images = torch.where(flips[0, :, None, None, None], images.flip(-1), images)
    return torch.where(flips[1, :, None, None, None], images.flip(-2), images)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else ""


def _timm():
    import timm  # imported on use: listing plugins must not pay for importing timm

    return timm


class TimmCNN(Classifier):
    name = "timm-cnn"
    description = "a timm image classifier (default timm's small test_resnet, group norm) trained from scratch: a judge of another architecture"
    params = {
        "model": Param("test_resnet", "timm model name, built with pretrained=False, in_chans=1, num_classes=2"),
        "model_args": Param({"norm_layer": "groupnorm1"}, "more keyword arguments of timm.create_model (default: group norm, no batch statistics)"),
        "batch_size": Param(32, "slices per step, half healthy and half tumor", minimum=2),
        "lr": Param(2e-3, "AdamW peak learning rate (cosine decay to 0 over the steps)", minimum=0.0),
        "weight_decay": Param(0.05, "AdamW decoupled weight decay", minimum=0.0),
        "augment": Param(True, "random left-right and up-down flips of training batches"),
        "intensity_augment": Param(True, "random intensity scale, gamma, Gaussian blur and noise on training batches"),
        "adversarial_eps": Param(0.0, "adversarial training: PGD examples move each pixel by at most this on [-1, 1] (0: off)", minimum=0.0, maximum=2.0),
        "adversarial_steps": Param(3, "adversarial training: PGD steps per batch", minimum=1),
        "adversarial_share": Param(0.5, "adversarial training: share of each class in a batch replaced by PGD examples", minimum=0.0, maximum=1.0),
    }
    # The code identity of the version before adversarial training: with it off (the default) this
    # version trains, stores and scores bit for bit as that one, so its pinned judges keep loading.
    same_results_as = ("9b4cd7ea9ba35ab5b307152b0b810ef800db85d330f5b54550bc9fec758d46db",)

    def __init__(self, **params) -> None:
        super().__init__(**params)
        model = self.hparams["model"]
        timm = _timm()
        if not timm.is_model(model):
            close = difflib.get_close_matches(model, timm.list_models(), n=3, cutoff=0.6)
            examples = list(dict.fromkeys([*close, *SUGGESTED_MODELS]))[:6]
            raise ParamError(f"{self.name}: parameter 'model': {model!r} is not a timm model (e.g. {', '.join(examples)}; all: timm.list_models())")
        try:  # built without memory or initialisation, to check the arguments now rather than after data preparation
            with torch.device("meta"):
                self._create()
        except Exception as exc:  # the model's constructor's own error, whatever its type
            raise ParamError(
                f"{self.name}: parameter 'model_args': timm model {model!r} does not accept {self.hparams['model_args']!r} "
                f"({type(exc).__name__}: {_first_line(exc)})"
            ) from None
        self.device = torch.device("cpu")
        self.network = None

    def _create(self) -> torch.nn.Module:
        return _timm().create_model(self.hparams["model"], pretrained=False, in_chans=1, num_classes=2, **self.hparams["model_args"])

    def _build(self) -> None:
        self.network = self._create().to(self.device)

    def _check_input(self, shape: tuple[int, ...]) -> None:
        """One forward pass at the training images' size: an architecture that cannot read them (a ViT
        with a fixed patch grid, too many stride-2 stages for the size) fails here in one line."""
        self.network.eval()
        try:
            with torch.no_grad():
                out = self.network(torch.zeros(2, *shape, device=self.device))
        except Exception as exc:  # the architecture's own error, whatever its type
            problem = f"{type(exc).__name__}: {_first_line(exc)}"
        else:
            if tuple(out.shape) == (2, 2):
                return
            problem = f"its output has shape {tuple(out.shape)}, not (N, 2)"
        size = "x".join(str(s) for s in shape)
        raise ParamError(f"{self.name}: parameter 'model': {self.hparams['model']!r} cannot judge {size} slices ({problem})")

    def fit(self, images, labels, ctx) -> None:
        self.device = ctx.device
        # The weights are drawn from the run's seed, whatever the global generator's state; dropout or
        # drop-path (in models that have them) draw from it too. The caller's generator is restored.
        with torch.random.fork_rng(devices=[ctx.device] if ctx.device.type == "cuda" else []):
            torch.manual_seed(ctx.seed)
            self._build()
            self._check_input(tuple(images.shape[1:]))
            self._train(images, labels, ctx)

    def _train(self, images, labels, ctx) -> None:
        images, labels = images.to(self.device), labels.long().to(self.device)
        optimizer = torch.optim.AdamW(self.network.parameters(), lr=self.hparams["lr"], weight_decay=self.hparams["weight_decay"])
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, ctx.steps))
        half = self.hparams["batch_size"] // 2
        by_class = [torch.nonzero(labels == c).flatten() for c in (0, 1)]
        draws = [ctx.batches(len(idx), min(half, len(idx))) for idx in by_class]
        perturb = IntensityAugmentation(seed=ctx.seed) if self.hparams["intensity_augment"] else None
        # Its own generator, so the batches and augmentations drawn are the same with and without it.
        attack_start = torch.Generator().manual_seed(ctx.seed) if self.hparams["adversarial_eps"] > 0 else None
        self.network.train()
        for _ in ctx.loop():
            batch = torch.cat([idx[next(draw).to(idx.device)] for idx, draw in zip(by_class, draws)])
            x = images[batch]
            if self.hparams["augment"]:
                x = random_flips(x, ctx.generator)
            if perturb is not None:
                x = perturb(x)
            if attack_start is not None:
                x = self._with_adversarial_examples(x, labels[batch], attack_start)
            with ctx.autocast():
                loss = F.cross_entropy(self.network(x), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            ctx.report({"ce": loss})
        self.network.eval()

    def _with_adversarial_examples(self, x: torch.Tensor, labels: torch.Tensor, attack_start: torch.Generator) -> torch.Tensor:
        """``x`` with ``adversarial_share`` of each class replaced by PGD examples made toward the wrong call."""
        h = self.hparams
        return with_adversarial_examples(self.network, x, labels, h["adversarial_share"], h["adversarial_steps"], h["adversarial_eps"], attack_start)

    @torch.inference_mode()
    def predict_proba(self, images: torch.Tensor) -> torch.Tensor:
        self.network.eval()
        device = next(self.network.parameters()).device
        probabilities = [torch.softmax(self.network(chunk.to(device)).float(), dim=1)[:, 1].cpu() for chunk in images.split(256)]
        return torch.cat(probabilities) if probabilities else torch.zeros(0)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.network.state_dict())

    def load_state_dict(self, state) -> None:
        """Rebuild the network on the CPU (where a stored judge is used) and load ``state``; float16
        tensors (as :func:`benchbias.judges.pinned.store` writes them) are cast to the network's float32."""
        self.device = torch.device("cpu")
        self._build()
        self.network.load_state_dict(dict(state))
        self.network.eval()


@hookimpl
def register_classifiers(register):
    register(TimmCNN)
