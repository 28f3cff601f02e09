"""The judges of a run: the classifier, whose calls make the verdict, and the benchmark's optional
extra judges (``segmenter:``, a MONAI U-Net that outlines tumor; ``second_judge:``, a second,
architecturally different classifier). Each is trained once, pinned beside the benchmark's YAML file
(``judges/<benchmark>[-segmenter|-second-judge].pt``) or cached for its protocol and data, and
identified by the sha256 of its weights (:mod:`benchbias.judges.pinned`).

Extra judges are not part of the protocol hash: they add scores (areas, Dice, a second opinion) but
not the verdict, so results with and without them share a leaderboard; their sha256 is recorded
like the classifier's, and a leaderboard refuses scores from another one.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchbias.data.protocol import Split, judge_population
from benchbias.data.slice_set import SliceSet
from benchbias.foundation.config import Benchmark, ClassifierConfig, ConfigError, ModelConfig, image_shape, protocol_of, stable_hash
from benchbias.foundation.contract import ParamError, TrainContext
from benchbias.foundation.registry import Registered, code_sha256
from benchbias.judges import pinned, segmenter

ROLES = ("classifier", "segmenter", "second_judge")


def unit_images(images: np.ndarray) -> torch.Tensor:
    """(N, H, W) in [0, 1] -> (N, 1, H, W), as they are."""
    return torch.from_numpy(np.ascontiguousarray(images))[:, None]


@dataclass
class Judge:
    """One judge of a run: its role, config, model and code identity."""

    role: str
    config: ModelConfig
    model: Any  # a Classifier, or a benchbias.judges.segmenter.TumorSegmenter
    code_sha256: str
    same_results_as: tuple[str, ...] = ()
    entry: Registered | None = None  # the plugin a classifier came from

    @property
    def shape(self) -> tuple[int, int] | None:
        """The size it reads images at (None: the slice size)."""
        size = getattr(self.config, "image_size", None)
        return None if size is None else image_shape(size)

    @property
    def stem(self) -> str:
        return "" if self.role == "classifier" else "-" + self.role.replace("_", "-")

    def pinned_files(self, bench: Benchmark) -> pinned.JudgeFiles:
        return pinned.JudgeFiles.beside(Path(bench.source_file), bench.name + self.stem)

    def trained_for(self, bench: Benchmark) -> str:
        """The protocol key its weights record: the classifier's is the protocol hash (it is part of the
        protocol). An extra judge's covers the protocol without the first judge's section, which its
        training never reads, and its own config, which the protocol hash does not: repinning the first
        judge keeps the extra judges' weights."""
        if self.role == "classifier":
            return bench.protocol_hash()
        protocol = {k: v for k, v in protocol_of(bench.to_dict()).items() if k != "classifier"}
        return stable_hash({"protocol": stable_hash(protocol), self.role: asdict(self.config)})

    def read(self, unit: torch.Tensor) -> np.ndarray | torch.Tensor:
        """A classifier's tumor probabilities ``(N,)``, or the segmenter's masks ``(N, 1, H, W)``, of
        images ``(N, 1, H, W)`` on the [0, 1] slice scale."""
        if self.role == "segmenter":
            return self.model.predict(pinned.inputs(unit))
        return self.model.predict_proba(pinned.inputs(unit, self.shape)).numpy()

    def quality_problems(self, info: dict[str, Any]) -> list[str]:
        if self.role == "segmenter":
            return segmenter.quality_problems(info)
        return pinned.quality_problems(info)


def judges_of(bench: Benchmark, classifier: Any, entry: Registered, instantiate: Callable[[ClassifierConfig, str], tuple[Any, Registered]]) -> dict[str, Judge]:
    """The benchmark's judges by role, models constructed with validated params."""
    judges = {"classifier": Judge("classifier", bench.classifier, classifier, entry.code_sha256, tuple(getattr(entry.cls, "same_results_as", ())), entry)}
    if bench.second_judge is not None:
        model, second = instantiate(bench.second_judge, "second_judge")
        judges["second_judge"] = Judge("second_judge", bench.second_judge, model, second.code_sha256, tuple(getattr(second.cls, "same_results_as", ())), second)
    if bench.segmenter is not None:
        try:
            model = segmenter.TumorSegmenter(**bench.segmenter.params)
        except ParamError as exc:
            raise ConfigError(f"{bench.source_file}: segmenter.params: {exc}") from None
        same = tuple(segmenter.TumorSegmenter.same_results_as)
        judges["segmenter"] = Judge("segmenter", bench.segmenter, model, code_sha256(segmenter.TumorSegmenter), same)
    return judges


def train(
    j: Judge, bench: Benchmark, slices: SliceSet, split: Split, holdout: SliceSet, context: Callable[[int, int, str], tuple[TrainContext, Any]]
) -> tuple[bytes, dict[str, Any]]:
    """Train a judge on real target slices of the training subjects and measure it on the holdout's
    real targets; its seed is the split seed, a part of the protocol."""
    seed = bench.split.seed
    if j.role == "segmenter":
        train_slices = slices.take(split.train)
        return segmenter.train(
            j.model,
            j.config.steps,
            seed,
            pinned.inputs(unit_images(train_slices.target)),
            torch.from_numpy(train_slices.tumor_mask),
            pinned.inputs(unit_images(holdout.target)),
            torch.from_numpy(holdout.tumor_mask),
            holdout.is_tumor,
            context,
        )
    population = judge_population(split, slices.is_tumor, bench.domains, j.config.population, seed)
    train_slices = slices.take(population)
    return pinned.train(
        j.model,
        j.config,
        seed,
        pinned.inputs(unit_images(train_slices.target), j.shape),
        torch.from_numpy(train_slices.is_tumor).long(),
        pinned.inputs(unit_images(holdout.target), j.shape),
        holdout.is_tumor,
        context,
    )


def record(j: Judge, bench: Benchmark, fingerprint: str, info: dict[str, Any]) -> dict[str, Any]:
    """A freshly trained judge's record, with what it was trained for (checked when it is loaded)."""
    return {**info, "protocol_hash": j.trained_for(bench), "dataset_fingerprint": fingerprint, "code_sha256": j.code_sha256}


def resolve(j: Judge, bench: Benchmark, fingerprint: str, cache: Path, train_it: Callable[[], tuple[bytes, dict[str, Any]]]) -> tuple[dict[str, Any], bool]:
    """Load the judge's pinned weights, else the ones cached for this protocol and data, else train
    it into the cache; return its record and whether it was trained now."""
    trained_for = j.trained_for(bench)
    kept = j.pinned_files(bench)
    cached = pinned.JudgeFiles.cached(cache, bench.name + j.stem, trained_for, fingerprint)
    if kept.exist():
        return {**pinned.load(kept, j.model, trained_for, fingerprint, j.code_sha256, j.same_results_as), "pinned": True, "file": str(kept.weights)}, False
    if cached.exist():
        try:
            return {
                **pinned.load(cached, j.model, trained_for, fingerprint, j.code_sha256, j.same_results_as),
                "pinned": False,
                "file": str(cached.weights),
            }, False
        except pinned.JudgeError as exc:  # benchbias wrote it: a damaged copy is retrained, not fatal
            print(f"benchbias: warning: {exc}; training it again", file=sys.stderr)
    blob, info = train_it()
    info = record(j, bench, fingerprint, info)
    pinned.store(cached, blob, info)
    what = "judge" if j.role == "classifier" else j.role.replace("_", " ")
    pin = f"; pin it with: benchbias judge train {bench.source_file}" if Path(bench.source_file).is_file() else ""  # not a private holdout's
    print(f"{what}: trained {info['sha256'][:12]} for this protocol and kept in {cached.weights}{pin}", file=sys.stderr)
    return {**info, "pinned": False, "file": str(cached.weights)}, True
