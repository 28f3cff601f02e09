"""The pinned judge: a benchmark's tumor classifier, trained once and identified by the sha256 of its
weights file.

Every machine must score with the same judge, or two leaderboard entries measure different things.
A benchmark's judge lives beside its YAML file as ``judges/<benchmark>.pt`` (weights, loaded with
``weights_only=True``) and ``judges/<benchmark>.json`` (the sha256 of the weights, the protocol and
data it was trained for, its holdout accuracy and robustness table). ``benchbias judge train``
writes them; the committed synthetic benchmarks ship theirs. A benchmark without a pinned judge gets
one trained on first use and kept in the cache, keyed by protocol and data, so later runs reuse it.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchbias.foundation.config import ModelConfig
from benchbias.foundation.contract import Classifier, TrainContext
from benchbias.foundation.errors import BenchbiasError
from benchbias.foundation.jsonio import read_json, write_atomically, write_json
from benchbias.judges.robustness import ACCURACY_FLOOR, robustness_table
from benchbias.nets.scale import to_network

JUDGE_FORMAT = 1


class JudgeError(BenchbiasError):
    """A pinned judge is missing, damaged, or belongs to another protocol or data set."""


@dataclass(frozen=True)
class JudgeFiles:
    weights: Path
    info: Path

    @classmethod
    def beside(cls, benchmark_file: Path, name: str) -> JudgeFiles:
        folder = Path(benchmark_file).resolve().parent / "judges"
        return cls(folder / f"{name}.pt", folder / f"{name}.json")

    @classmethod
    def cached(cls, cache: Path, name: str, protocol_hash: str, dataset_fingerprint: str) -> JudgeFiles:
        stem = f"{name}-{protocol_hash[:12]}-{dataset_fingerprint[:12]}"
        return cls(cache / "judges" / f"{stem}.pt", cache / "judges" / f"{stem}.json")

    def exist(self) -> bool:
        return self.weights.is_file() and self.info.is_file()


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _weights_bytes(classifier: Classifier) -> bytes:
    """The weights as stored: float tensors in float16, which halves the committed file; the judge
    is measured after reloading these bytes, so what is recorded is what every run uses."""
    handle = io.BytesIO()
    state = {k: (v.half() if v.is_floating_point() else v).detach().cpu().contiguous() for k, v in classifier.state_dict().items()}
    torch.save(state, handle)
    return handle.getvalue()


def load(
    files: JudgeFiles, classifier: Classifier, protocol_hash: str, dataset_fingerprint: str, code_sha256: str, same_results_as: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Load pinned weights into ``classifier`` after checking that they are the recorded ones, that
    they were trained for this protocol and data, and that the classifier's code has not changed
    since (or is one of ``same_results_as``: earlier code identities the classifier declares it
    reproduces, the class attribute of that name); return the judge's record."""
    try:
        info = read_json(files.info)
    except (OSError, ValueError) as exc:
        raise JudgeError(f"{files.info}: cannot be read as a judge record ({exc}); retrain it with: benchbias judge train") from None
    if not isinstance(info, dict) or info.get("format") != JUDGE_FORMAT:
        raise JudgeError(f"{files.info}: format: not a benchbias judge record (format {JUDGE_FORMAT}); retrain it with: benchbias judge train")
    actual = sha256_of(files.weights)
    if actual != info.get("sha256"):
        raise JudgeError(
            f"{files.weights}: sha256 {actual[:12]} differs from {str(info.get('sha256'))[:12]} recorded in {files.info.name} (weights replaced or damaged)"
        )
    for key, mine in (("protocol_hash", protocol_hash), ("dataset_fingerprint", dataset_fingerprint), ("code_sha256", code_sha256)):
        if info.get(key) != mine and not (key == "code_sha256" and info.get(key) in same_results_as):
            raise JudgeError(
                f"{files.info}: {key}: the judge was trained with {str(info.get(key))[:12]}, this run has {mine[:12]}; retrain it with: benchbias judge train"
            )
    try:
        state = torch.load(files.weights, map_location="cpu", weights_only=True)
        classifier.device = torch.device("cpu")  # first: a plugin may rebuild its network on .device when loading
        classifier.load_state_dict(state)
    except Exception as exc:  # a damaged zip or a state dict of another network
        raise JudgeError(f"{files.weights}: cannot be loaded as {info.get('name')} weights: {type(exc).__name__}: {exc}") from None
    classifier.device = torch.device("cpu")
    return info


def inputs(unit: torch.Tensor, shape: tuple[int, int] | None = None) -> torch.Tensor:
    """What the judge reads: ``unit`` ``(N, 1, H, W)`` on the [0, 1] slice scale, resized to ``shape``
    (rows, columns; bilinear with antialiasing, as PIL resizes) when given and different, on [-1, 1].
    The judge's scale does not follow ``slices.network_max``: it reads real slices and translations
    alike, on the scale its augmentation and robustness table are defined on."""
    if shape is not None and tuple(unit.shape[-2:]) != tuple(shape):
        unit = torch.nn.functional.interpolate(unit, size=tuple(shape), mode="bilinear", antialias=True, align_corners=False).clamp(0.0, 1.0)
    return to_network(unit)


def train(
    classifier: Classifier,
    config: ModelConfig,
    seed: int,
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    holdout_images: torch.Tensor,
    holdout_labels: np.ndarray,
    context: Callable[[int, int, str], tuple[TrainContext, Any]],
) -> tuple[bytes, dict[str, Any]]:
    """Train the judge on the CPU and measure it; return its weights file's bytes and its record."""
    torch.manual_seed(seed)
    ctx, bar = context(seed, config.steps, f"judge {config.plugin}")
    start = time.perf_counter()
    with bar:
        classifier.fit(train_images, train_labels, ctx)
    seconds = time.perf_counter() - start
    blob = _weights_bytes(classifier)
    # Measure the judge as it will be used: reloaded from those bytes, on the CPU.
    classifier.device = torch.device("cpu")  # first: a plugin may rebuild its network on .device when loading
    classifier.load_state_dict(torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True))
    called = classifier.predict_proba(holdout_images).numpy() > 0.5
    truth = holdout_labels.astype(bool)
    robustness = robustness_table(classifier.predict_proba, holdout_images, truth, seed)
    info = {
        "format": JUDGE_FORMAT,
        "sha256": hashlib.sha256(blob).hexdigest(),
        "name": config.plugin,
        "params": classifier.hparams,
        "steps": config.steps,
        "seed": seed,
        "train_slices": int(len(train_labels)),
        "train_tumor_slices": int(train_labels.sum()),
        "train_time_s": round(seconds, 2),
        "trained_with": {"torch": torch.__version__, "device": str(ctx.device), "threads": torch.get_num_threads()},
        "holdout_accuracy": float((called == truth).mean()),
        "holdout_sensitivity": float(called[truth].mean()) if truth.any() else None,
        "holdout_specificity": float((~called[~truth]).mean()) if (~truth).any() else None,
        "robustness": robustness,
    }
    return blob, info


def store(files: JudgeFiles, blob: bytes, info: dict[str, Any]) -> None:
    write_atomically(files.weights, lambda handle: handle.write(blob))
    write_json(files.info, info)


def quality_problems(info: dict[str, Any]) -> list[str]:
    """Why this judge falls short of the benchmark's standard (empty when it does not)."""
    problems = []
    if info["holdout_accuracy"] < ACCURACY_FLOOR:
        problems.append(f"holdout accuracy {info['holdout_accuracy']:.3f} < {ACCURACY_FLOOR}")
    robustness = info["robustness"]
    if not robustness["robust"]:
        worst = max(robustness["perturbed"], key=lambda row: row["max_shift"])
        problems.append(f"'{worst['perturbation']}' moves a tumor-called rate by {worst['max_shift']:.2f} (> {robustness['limit']:.2f})")
    return problems


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What retraining changed, one line each (for ``benchbias judge train``)."""
    lines = []
    if old.get("sha256") == new["sha256"]:
        return ["weights identical (sha256 unchanged)"]
    lines.append(f"sha256 {str(old.get('sha256'))[:12]} -> {new['sha256'][:12]}")
    for key in ("protocol_hash", "dataset_fingerprint", "code_sha256", "steps", "params"):
        if old.get(key) != new.get(key):
            lines.append(f"{key}: {old.get(key)} -> {new.get(key)}")
    for key in ("holdout_accuracy", "holdout_sensitivity", "holdout_specificity"):
        a, b = old.get(key), new.get(key)
        if a is not None and b is not None:
            lines.append(f"{key}: {a:.3f} -> {b:.3f}")
    for key in ("holdout_dice", "holdout_false_positive_share"):  # a segmenter's
        a, b = old.get(key), new.get(key)
        if a is not None and b is not None:
            lines.append(f"{key}: {a:.3f} -> {b:.3f}")
    a, b = largest_shift(old), largest_shift(new)
    if a is not None and b is not None:
        lines.append(f"largest shift under a benign perturbation: {a:.2f} -> {b:.2f}")
    return lines


def largest_shift(info: dict[str, Any]) -> float | None:
    """A classifier's largest tumor-called shift under a benign perturbation; None for a segmenter,
    whose robustness is a list of per-perturbation sizes rather than one shift."""
    robustness = info.get("robustness")
    return robustness.get("max_shift") if isinstance(robustness, dict) else None
