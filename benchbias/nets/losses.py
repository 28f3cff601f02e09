"""The adversarial losses of the baselines, as in the pix2pix / CycleGAN reference code (``GANLoss``).

``lsgan``:   least squares (Mao et al. 2017) on the raw discriminator output: real -> 1, fake -> 0.
``vanilla``: the log-loss of Table 1 (Goodfellow et al. 2014) as binary cross-entropy on logits; the
             generator side is the non-saturating ``-log D(f(a))`` form that Table 1 writes.

Both are averaged over every patch of a PatchGAN output, per model when models train together (a
leading model axis: one loss per model, see ``translation.py``). The loss is computed in float32 even
when the discriminator ran under bfloat16 autocast.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

GAN_MODES = ("lsgan", "vanilla")


def mean_per_model(values: torch.Tensor) -> torch.Tensor:
    """The mean over the last four dimensions ``(N, C, H, W)``: a scalar for one model's batch, one
    value per model for a stack's ``(models, N, C, H, W)``."""
    return values.mean(dim=(-4, -3, -2, -1))


def gan_loss(prediction: torch.Tensor, real: bool, mode: str) -> torch.Tensor:
    """Loss that pushes the discriminator ``prediction`` towards "real" (label 1) or "fake" (label 0)."""
    prediction = prediction.float()
    target = torch.full_like(prediction, 1.0 if real else 0.0)
    if mode == "lsgan":
        return mean_per_model(F.mse_loss(prediction, target, reduction="none"))
    if mode == "vanilla":
        return mean_per_model(F.binary_cross_entropy_with_logits(prediction, target, reduction="none"))
    raise ValueError(f"unknown GAN mode {mode!r} (known: {', '.join(GAN_MODES)})")


class GANLoss:
    """The two sides of one GAN objective.

    ``generator(D(fake))``             the generator wants its output called real;
    ``discriminator(D(real), D(fake))`` real called real and fake called fake, halved as in the
                                       reference code (so D learns at half the rate of G).
    """

    def __init__(self, mode: str) -> None:
        if mode not in GAN_MODES:
            raise ValueError(f"unknown GAN mode {mode!r} (known: {', '.join(GAN_MODES)})")
        self.mode = mode

    def __call__(self, prediction: torch.Tensor, real: bool) -> torch.Tensor:
        return gan_loss(prediction, real, self.mode)

    def generator(self, fake_prediction: torch.Tensor) -> torch.Tensor:
        return gan_loss(fake_prediction, True, self.mode)

    def discriminator(self, real_prediction: torch.Tensor, fake_prediction: torch.Tensor) -> torch.Tensor:
        return 0.5 * (gan_loss(real_prediction, True, self.mode) + gan_loss(fake_prediction, False, self.mode))
