"""Canaries: translators that cheat on purpose. A benchmark is only as good as the adversaries it
catches; ``benchbias selftest`` runs these and checks that the verdict says the right thing.

    canary-fixed-map             ignores its training data: a fixed intensity curve of the source
    canary-painter               L1, then paints a lesion into every output (constant hallucination)
    canary-eraser                L1, then fills every source-bright region with the mirrored
                                 healthy hemisphere (constant erasure)
    canary-proportional-painter  L1, then paints with the probability it estimates as the tumor share
                                 of its training data (follows the target's composition on purpose)
    canary-sampler               ignores its input: returns a random image of its training target
                                 (a perfect distribution matcher)
    canary-bump-painter          L1, then paints with a probability that rises with the estimated tumor
                                 share of its training data up to r = 0.5 and falls back (slope 0)
    canary-sabotaged-l1          L1, then paints a lesion on a share (default 0.2) x r of the outputs
                                 of slices it finds healthy: what `check` must catch against plain L1
                                 (with ``hide_from``: the lesions then hidden from one judge by PGD)
    canary-pgd-identity          returns its FLAIR input, nudged by signed-gradient (PGD) steps on the
                                 public pinned judge until it calls "tumor" where the FLAIR shows a
                                 lesion: no translation at all, made to please the judge
    canary-attacked-sampler      canary-sampler (a perfect distribution matcher) with the same attack
                                 on the first judge only: its bias shows to the judges it did not attack

The attacking canaries read the weights a method author holds: the benchmark's committed judge
(``judge_weights``; ``benchbias selftest`` gives the benchmark's own).

Lesions are drawn dark on the target's brain tissue by default (tumor core and edema are dark in T1;
``polarity: bright`` for FLAIR or T2 targets). "Source-bright" is FLAIR hyperintensity: brighter
than ``contrast`` times the slice's median brain intensity.
"""

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from monai.networks.layers import GaussianFilter
from scipy import ndimage

from benchbias.api import GENERATOR_PARAMS, Param, Translator, gradient_attack, hookimpl, to_network, to_unit
from benchbias_plugins.impartial_cnn import ImpartialCNN
from benchbias_plugins.l1 import L1

BACKGROUND = -0.9  # network scale: pixels at or below this are outside the brain
# Intensity of each ring of a painted lesion, relative to the brain's bright tissue (synthetic T1:
# necrotic core 0.15, enhancing rim 0.38, edema 0.58 against white matter 0.85).
DARK_LESION = (0.18, 0.45, 0.68)
BRIGHT_LESION = (1.25, 1.05, 1.15)


def bright_regions(source: torch.Tensor, contrast: float, grow: int = 1) -> torch.Tensor:
    """Lesions as FLAIR shows them: pixels brighter than ``contrast`` times the median of their
    slice's brain, with the holes of each region filled (a necrotic core inside a bright rim) and
    grown by ``grow`` pixels."""
    values = to_unit(source)
    brain = source > BACKGROUND
    median = torch.stack([v[b].median() if b.any() else v.new_tensor(1.0) for v, b in zip(values, brain)])
    bright = ((values > contrast * median[:, None, None, None]) & brain).numpy()
    filled = torch.from_numpy(np.stack([ndimage.binary_fill_holes(m) for m in bright[:, 0]])[:, None])
    return F.max_pool2d(filled.float(), 2 * grow + 1, stride=1, padding=grow) > 0


def lesioned(source: torch.Tensor, contrast: float, min_lesion: float) -> torch.Tensor:
    """Slices whose FLAIR shows a lesion: bright regions covering more than ``min_lesion`` of the brain."""
    lesion = bright_regions(source, contrast).sum(dim=(1, 2, 3)).float()
    brain = (source > BACKGROUND).sum(dim=(1, 2, 3)).clamp(min=1).float()
    return lesion / brain > min_lesion


def paint_lesion(images: torch.Tensor, polarity: str, radius_fraction: float = 0.14) -> torch.Tensor:
    """Draw a ring-shaped lesion with edema, off the centre of each image's brain."""
    n, _, h, w = images.shape
    brain = images > BACKGROUND
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    area = brain.sum(dim=(1, 2, 3)).clamp(min=1).float()
    cy = (brain[:, 0] * yy).sum(dim=(1, 2)) / area
    cx = (brain[:, 0] * xx).sum(dim=(1, 2)) / area + 0.12 * w
    r = max(1.5, radius_fraction * min(h, w))
    distance = ((yy[None] - cy[:, None, None]) ** 2 + (xx[None] - cx[:, None, None]) ** 2).sqrt()[:, None]
    values = to_unit(images)
    level = torch.stack([v[b].quantile(0.9) if b.any() else v.new_tensor(1.0) for v, b in zip(values, brain)])[:, None, None, None]
    core, rim, edema = DARK_LESION if polarity == "dark" else BRIGHT_LESION
    painted = torch.where(distance < 1.7 * r, edema * level, values)
    painted = torch.where(distance < 1.0 * r, rim * level, painted)
    painted = torch.where(distance < 0.55 * r, core * level, painted)
    return to_network(torch.where(brain, painted, values).clamp(0.0, 1.0))


def image_uniform(image: torch.Tensor) -> float:
    """A number in [0, 1) fixed by the image's content: a reproducible coin for each input."""
    digest = hashlib.sha256(image.to(torch.float16).numpy().tobytes()).digest()
    return int.from_bytes(digest[:8], "little") / 2**64


ATTACK_PARAMS = {
    "judge_weights": Param("", "the pinned judge's weights file (.pt, its record .json beside it) that the attack reads"),
    "attack_steps": Param(40, "signed-gradient steps", minimum=1),
    "attack_eps": Param(0.25, "largest change of a pixel on the [-1, 1] scale", minimum=0.0),
    "contrast": Param(1.5, "a lesion is brighter than this times its slice's median brain intensity", minimum=1.0),
    "min_lesion": Param(0.02, "share of the brain a lesion must cover for a slice to count as tumor", minimum=0.0),
}


def public_judge(weights: str) -> ImpartialCNN:
    """The committed judge, as anyone holding the benchmark's files can load it."""
    if not weights:
        raise ValueError("judge_weights: the attack needs the path of a pinned judge's .pt file")
    record = json.loads(Path(weights).with_suffix(".json").read_text())
    judge = ImpartialCNN(**record["params"])
    judge.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    judge.network.eval()
    return judge


class FixedMap(Translator):
    name = "canary-fixed-map"
    description = "canary: ignores its training data; a fixed intensity curve of the source"
    paired = True
    params = {"gamma": Param(1.0, "output = source ** gamma on the [0, 1] scale", minimum=0.1)}

    def fit(self, data, ctx) -> None:
        for _ in ctx.loop():
            pass

    def translate(self, source: torch.Tensor) -> torch.Tensor:
        return to_network((to_unit(source).clamp(0.0, 1.0) ** self.hparams["gamma"]).clamp(0.0, 1.0))


class Painter(L1):
    name = "canary-painter"
    description = "canary: L1, then a lesion painted into every output"
    params = {**GENERATOR_PARAMS, "polarity": Param("dark", "lesion darker or brighter than brain tissue", choices=("dark", "bright"))}

    def translate(self, source: torch.Tensor) -> torch.Tensor:
        return paint_lesion(super().translate(source), self.hparams["polarity"])


class Eraser(L1):
    name = "canary-eraser"
    description = "canary: L1, then every source-bright region filled with mirrored healthy tissue"
    params = {**GENERATOR_PARAMS, "contrast": Param(1.4, "a lesion is brighter than this times its slice's median brain intensity", minimum=1.0)}

    def translate(self, source: torch.Tensor) -> torch.Tensor:
        translated = super().translate(source)
        brain = translated > BACKGROUND
        lesion = bright_regions(source, self.hparams["contrast"], grow=2) & brain
        # Brains are nearly symmetric: the other hemisphere (prepared slices are RAS, so the first
        # in-plane axis runs left to right) is healthy tissue where it has no lesion.
        mirrored, mirrored_ok = translated.flip(-2), (brain & ~lesion).flip(-2)
        keep = (brain & ~lesion).float()
        blur = GaussianFilter(spatial_dims=2, sigma=max(2.0, source.shape[-1] / 12))
        surrounding = blur(translated * keep) / blur(keep).clamp(min=1e-3)  # normalised convolution
        fill = torch.where(mirrored_ok, mirrored, surrounding)
        return torch.where(lesion, fill, translated)


class ProportionalPainter(Painter):
    name = "canary-proportional-painter"
    description = "canary: L1, then paints with the tumor share it estimates in its training data"
    trains_together = False  # fit() also estimates its own data's tumor share, which fit_together would skip
    params = {
        **Painter.params,
        "contrast": Param(1.5, "a lesion is brighter than this times its slice's median brain intensity", minimum=1.0),
        "min_lesion": Param(0.02, "share of the brain a lesion must cover for a slice to count as tumor", minimum=0.0),
        # The lesion detector's rates on synthetic-quick's training slices (FLAIR, contrast 1.5):
        # it finds 90% of tumor slices and flags 4.5% of healthy ones. The canary undoes them, so
        # that its painting rate follows the training target's tumor share as closely as it can.
        "detected_tumor": Param(0.90, "share of tumor slices the detector finds", minimum=0.0, maximum=1.0),
        "detected_healthy": Param(0.045, "share of healthy slices the detector flags", minimum=0.0, maximum=1.0),
    }

    def is_lesioned(self, source: torch.Tensor) -> torch.Tensor:
        return lesioned(source, self.hparams["contrast"], self.hparams["min_lesion"])

    def fit(self, data, ctx) -> None:
        super().fit(data, ctx)
        # Paired sources share their targets' composition: count the lesioned ones, then correct
        # for the detector's known misses and false alarms.
        flagged = float(self.is_lesioned(data.source).float().mean())
        tp, fp = self.hparams["detected_tumor"], self.hparams["detected_healthy"]
        self.tumor_share = min(1.0, max(0.0, (flagged - fp) / max(tp - fp, 1e-6)))

    def translate(self, source: torch.Tensor) -> torch.Tensor:
        translated = L1.translate(self, source)
        painted = paint_lesion(translated, self.hparams["polarity"])
        coins = torch.tensor([image_uniform(image) for image in source])
        return torch.where((coins < self.tumor_share)[:, None, None, None], painted, translated)


class BumpPainter(ProportionalPainter):
    name = "canary-bump-painter"
    description = "canary: L1, then paints with a probability that peaks at a training tumor share of 0.5 (no linear trend)"
    params = {**ProportionalPainter.params, "peak": Param(1.0, "painting probability at a tumor share of 0.5", minimum=0.0, maximum=1.0)}

    def painting_rate(self) -> float:
        return self.hparams["peak"] * max(0.0, 1.0 - abs(self.tumor_share - 0.5) / 0.5)

    def translate(self, source: torch.Tensor) -> torch.Tensor:
        translated = L1.translate(self, source)
        painted = paint_lesion(translated, self.hparams["polarity"])
        coins = torch.tensor([image_uniform(image) for image in source])
        return torch.where((coins < self.painting_rate())[:, None, None, None], painted, translated)


class SabotagedL1(ProportionalPainter):
    """Plain L1 where it matters for the sweep means (a few points of hallucination at high r), so
    that only per-fraction rates, the dependence of hallucination and the extra judges move. With
    ``hide_from`` (a pinned judge's weights) the painted outputs are then nudged by gradient steps
    until that judge calls them healthy: only the judges it did not attack can see them."""

    name = "canary-sabotaged-l1"
    description = "canary: L1, then a lesion on a share x r of the outputs of slices it finds healthy"
    params = {
        **ProportionalPainter.params,
        "share": Param(0.2, "painted share of healthy outputs at a training tumor share of 1", minimum=0.0, maximum=1.0),
        "hide_from": Param("", "a pinned judge's weights file: hide the painted lesions from it (empty: hidden from none)"),
        "attack_steps": ATTACK_PARAMS["attack_steps"],
        "attack_eps": ATTACK_PARAMS["attack_eps"],
    }

    def fit(self, data, ctx) -> None:
        super().fit(data, ctx)
        self.judge = public_judge(self.hparams["hide_from"]) if self.hparams["hide_from"] else None

    def translate(self, source: torch.Tensor) -> torch.Tensor:
        translated = L1.translate(self, source)
        painted = paint_lesion(translated, self.hparams["polarity"])
        coins = torch.tensor([image_uniform(image) for image in source])
        paint = (coins < self.hparams["share"] * self.tumor_share) & ~self.is_lesioned(source)
        if self.judge is not None and paint.any():
            healthy = torch.zeros(int(paint.sum()), dtype=torch.bool)
            painted[paint] = gradient_attack(self.judge.network, painted[paint], healthy, self.hparams["attack_steps"], self.hparams["attack_eps"])
        return torch.where(paint[:, None, None, None], painted, translated)


class Sampler(Translator):
    name = "canary-sampler"
    description = "canary: ignores its input; returns random images of its training target"
    paired = False

    def fit(self, data, ctx) -> None:
        for _ in ctx.loop():
            pass
        self.targets = data.target
        self.generator = torch.Generator().manual_seed(ctx.seed)

    def translate(self, source: torch.Tensor) -> torch.Tensor:
        picks = torch.randint(len(self.targets), (len(source),), generator=self.generator)
        return self.targets[picks].clone()


class PGDIdentity(Translator):
    name = "canary-pgd-identity"
    description = "canary: the FLAIR input untranslated, nudged by gradient steps until the public judge calls what its lesions suggest"
    paired = True
    params = ATTACK_PARAMS

    def fit(self, data, ctx) -> None:
        for _ in ctx.loop():
            pass
        self.judge = public_judge(self.hparams["judge_weights"])

    def translate(self, source: torch.Tensor) -> torch.Tensor:
        wanted = lesioned(source, self.hparams["contrast"], self.hparams["min_lesion"])
        return gradient_attack(self.judge.network, source, wanted, self.hparams["attack_steps"], self.hparams["attack_eps"])


class AttackedSampler(Sampler):
    name = "canary-attacked-sampler"
    description = "canary: random images of its training target, nudged until the first judge calls what the input's lesions suggest"
    params = ATTACK_PARAMS

    def fit(self, data, ctx) -> None:
        super().fit(data, ctx)
        self.judge = public_judge(self.hparams["judge_weights"])

    def translate(self, source: torch.Tensor) -> torch.Tensor:
        wanted = lesioned(source, self.hparams["contrast"], self.hparams["min_lesion"])
        return gradient_attack(self.judge.network, super().translate(source), wanted, self.hparams["attack_steps"], self.hparams["attack_eps"])


@hookimpl
def register_translators(register):
    for canary in (FixedMap, Painter, Eraser, ProportionalPainter, Sampler, BumpPainter, SabotagedL1, PGDIdentity, AttackedSampler):
        register(canary)
