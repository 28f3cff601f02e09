"""Computing cells from a run's :class:`~benchbias.run.inputs.RunInputs`: train a program's models,
translate the holdout with each, and score the translations; or score stored translations again.

The same functions run in the runner's process, in local worker processes and in Ray tasks: they
take the inputs and a program, and return each cell with its array files (nothing is written here).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from benchbias.data.protocol import Domains, paired_domains, unpaired_domains
from benchbias.data.slice_set import SliceSet
from benchbias.foundation.config import ModelConfig
from benchbias.foundation.contract import Evidence, PairedSlices, Translator, UnpairedDomains
from benchbias.foundation.errors import BenchbiasError
from benchbias.foundation.jsonio import write_atomically
from benchbias.nets.scale import to_network, to_unit, unit_images
from benchbias.run.cells import JUDGED, TRANSLATIONS, CellJob, CellOutcome, Program, npz_bytes, translations_sha256
from benchbias.run.losses import RecordingContext
from benchbias.scoring.metrics import score_cell

if TYPE_CHECKING:  # the sandboxed child imports this module without the data pipeline behind RunInputs
    from benchbias.run.inputs import RunInputs

TRANSLATE_BATCH = 64
Report = Callable[[str, int, int, "dict[str, float] | None"], None]  # (label, steps done, steps, losses)


class TranslatorOutputError(BenchbiasError, ValueError):
    """A translator returned something that is not a translation of the holdout slices."""


class PluginFailure(BenchbiasError):
    """A translator plugin's own code raised (in ``fit``, ``training_step`` or ``translate``): ``where``
    names the method, fractions and seed, ``details`` holds the full traceback for the run's log file.
    Both travel as the exception's arguments, so it crosses process boundaries (workers, Ray) intact."""

    def __init__(self, where: str, problem: str, details: str) -> None:
        super().__init__(where, problem, details)
        self.where, self.problem, self.details = where, problem, details

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}"


def plugin_failure(where: str, call: str, exc: BaseException) -> PluginFailure:
    """The failure of a plugin's ``call`` as one line (the exception's type and first line) and its traceback."""
    first = (str(exc).strip().splitlines() or [""])[0]
    problem = f"{call} raised {type(exc).__name__}" + (f": {first}" if first else "")
    own = [f for f in traceback.extract_tb(exc.__traceback__) if not any(part in f.filename for part in ("site-packages", "/lib/python", "/benchbias/"))]
    if own:  # the plugin's innermost line: where to look first
        problem += f" (in {own[-1].name}, {Path(own[-1].filename).name} line {own[-1].lineno})"
    return PluginFailure(where, problem, "".join(traceback.format_exception(exc)))


def program_where(method: ModelConfig, program: Program) -> str:
    fractions = ", ".join(f"{job.ratio:g}" for job in program.jobs)
    return f"methods.{method.name} (plugin {method.plugin}) at target fraction{'s' if len(program.jobs) > 1 else ''} {fractions}, seed {program.seed}"


def compute_program(inputs: RunInputs, program: Program, report: Report | None, workdirs: Sequence[Path]) -> list[CellOutcome]:
    """Train the models of ``program`` (one cell's, or several fractions' trained together), then
    translate the holdout with each and score the translations; ``report(label, done, steps,
    losses)`` sees the steps. ``workdirs``: each cell's working folder."""
    bench, data, m = inputs.bench, inputs.data, inputs.network_max
    method = next(x for x in inputs.plugins.methods if x.name == program.method)
    seed = program.seed
    template, _ = inputs.plugins.translators[method.name]
    translator: Translator = type(template)(**template.hparams)
    domains, sets, contexts = [], [], []
    for i, (job, workdir) in enumerate(zip(program.jobs, workdirs)):
        d = (paired_domains if translator.paired else unpaired_domains)(data.split.train, data.slices.is_tumor, bench.domains, job.ratio, seed)
        source, target = to_network(unit_images(data.slices.source[d.source]), m), to_network(unit_images(data.slices.target[d.target]), m)
        domains.append(d)
        sets.append(PairedSlices(source, target) if translator.paired else UnpairedDomains(source, target))
        workdir.mkdir(parents=True, exist_ok=True)

        def on_step(step: int, losses: dict[str, float] | None, first: bool = i == 0) -> None:
            if report is not None and first:  # one progress line per program
                report(program.label, step + 1, method.steps, losses)

        contexts.append(RecordingContext(seed=seed, device=inputs.device, steps=method.steps, workdir=workdir, amp=inputs.amp, on_step=on_step))
    # Common random numbers: within a seed every target fraction starts from the same initial
    # weights and batch stream, so differences across fractions come from the target domain's
    # composition rather than from initialisation noise. Seeds are independent replicates.
    if inputs.isolated:
        return compute_isolated(inputs, program, method, sets, domains, report)
    torch.manual_seed(seed)
    start = time.perf_counter()
    try:
        if len(program.jobs) == 1:
            translator.fit(sets[0], contexts[0])
            models = [translator]
        else:
            models = translator.fit_together(sets, contexts)
    except BenchbiasError:
        raise
    except Exception as exc:  # the plugin's own code: one line naming the cell, the traceback to the run's log
        raise plugin_failure(program_where(method, program), "fit()", exc) from None
    train_seconds = (time.perf_counter() - start) / len(models)  # each model's share of the program
    outcomes = []
    for job, model, d, ctx in zip(program.jobs, models, domains, contexts):
        start = time.perf_counter()
        raw = translate_holdout(model, inputs.data.holdout_source, cell_where(method, job))
        outcomes.append(finish_cell(inputs, job, method, raw, d, train_seconds, time.perf_counter() - start, len(models), ctx.curve()))
    return outcomes


def compute_isolated(
    inputs: RunInputs, program: Program, method: ModelConfig, sets: Sequence[PairedSlices | UnpairedDomains], domains: Sequence[Domains], report: Report | None
) -> list[CellOutcome]:
    """:func:`compute_program`'s training and translating done by a child in the OS sandbox
    (:mod:`benchbias.sandbox`); the scoring stays here."""
    from benchbias.sandbox import IsolatedProgram, isolation_name, train_and_translate
    from benchbias.sandbox.isolated import SandboxFailure

    template, _ = inputs.plugins.translators[method.name]
    job = IsolatedProgram(
        plugin=method.plugin,
        params=dict(template.hparams),
        plugin_dirs=inputs.plugin_dirs,
        sources=[s.source.numpy() for s in sets],
        targets=[s.target.numpy() for s in sets],
        holdout_source=inputs.data.holdout_source.numpy(),
        steps=method.steps,
        seed=program.seed,
        threads=torch.get_num_threads(),
        where=program_where(method, program),
    )
    progress = None if report is None else lambda done, losses: report(program.label, done, method.steps, losses)
    try:
        result = train_and_translate(job, progress, hidden=inputs.hidden)
    except SandboxFailure as exc:
        raise PluginFailure(exc.where, exc.problem, exc.details) from None
    isolation = isolation_name()
    outcomes = []
    for cell_job, raw, d, curve, seconds in zip(program.jobs, result.translations, domains, result.curves, result.translate_seconds):
        check_translations(raw, inputs.data.holdout_source, cell_where(method, cell_job))
        outcome = finish_cell(inputs, cell_job, method, raw, d, result.train_seconds, seconds, len(program.jobs), curve)
        outcomes.append(CellOutcome({**outcome.cell, "isolation": isolation}, outcome.files))
    return outcomes


def cell_where(method: ModelConfig, job: CellJob) -> str:
    return f"methods.{method.name} (plugin {method.plugin}) at target fraction {job.ratio:g}, seed {job.seed}"


def translate_holdout(translator: Translator, source: torch.Tensor, where: str) -> torch.Tensor:
    """The translator's output for every holdout source slice, checked."""
    raw = torch.cat([_translate(translator, batch, where) for batch in source.split(TRANSLATE_BATCH)])
    check_translations(raw, source, where)
    return raw


def check_translations(raw: torch.Tensor, source: torch.Tensor, where: str) -> None:
    if raw.shape != source.shape:
        raise TranslatorOutputError(f"{where}: translate() returned shape {tuple(raw.shape)} for inputs of shape {tuple(source.shape)}")
    if not torch.isfinite(raw).all():
        raise TranslatorOutputError(f"{where}: translate() returned NaN or infinite values (training diverged?); finished cells are kept")


def finish_cell(
    inputs: RunInputs,
    job: CellJob,
    method: ModelConfig,
    raw: torch.Tensor,
    domains: Domains,
    train_seconds: float,
    translate_seconds: float,
    together: int,
    curve: dict[str, Any] | None,
) -> CellOutcome:
    """A cell from its holdout translations ``raw`` (on the translators' range): stored as float16 on
    [0, 1] and scored."""
    translated, out_of_range = stored_form(raw, inputs.network_max)
    translations = npz_bytes(translated=translated[:, 0].numpy(), out_of_range=out_of_range.astype(np.float32))
    cell = {
        "fingerprint": job.key,
        "method": method.name,
        "ratio": job.ratio,
        "seed": job.seed,
        "target_tumor_slices": int(inputs.data.slices.is_tumor[domains.target].sum()),
        "train_time_s": round(train_seconds, 2),
        **({"trained_together": together} if together > 1 else {}),
        "translate_time_s": round(translate_seconds, 2),
        "translations_sha256": translations_sha256(translated[:, 0].numpy()),
    }
    scored, judged = score(inputs, job, translated.float(), out_of_range)
    return CellOutcome({**cell, **scored, **({"loss_curve": curve} if curve else {})}, {TRANSLATIONS: translations, JUDGED: judged})


def stored_form(raw: torch.Tensor, network_max: float) -> tuple[torch.Tensor, np.ndarray]:
    """Translations as cells store and score them: float16 on [0, 1], clamped; and each slice's share
    of pixels that were outside [0, 1] before the clamp."""
    low, high = to_network(unit_images(np.array([[[0.0]], [[1.0]]], np.float32)), network_max).flatten().tolist()  # [0, 1] as the translators saw it
    out_of_range = ((raw < low) | (raw > high)).flatten(1).float().mean(1).numpy()
    # float16, so a later rescoring of the stored translations gives the same numbers.
    return to_unit(raw, network_max, clamp=True).half(), out_of_range


def _translate(translator: Translator, batch: torch.Tensor, where: str) -> torch.Tensor:
    try:
        out = translator.translate(batch)
    except BenchbiasError:
        raise
    except Exception as exc:
        raise plugin_failure(where, "translate()", exc) from None
    if not isinstance(out, torch.Tensor):
        raise TranslatorOutputError(f"{where}: translate() returned {type(out).__module__}.{type(out).__name__}; it must return a torch.Tensor")
    return out.detach().to("cpu", torch.float32)


def score(inputs: RunInputs, job: CellJob, translated: torch.Tensor, out_of_range: np.ndarray) -> tuple[dict[str, Any], bytes]:
    """Every metric's scores of a cell's translations ``(N, 1, H, W)`` on [0, 1], with bootstrap
    intervals over holdout slices, and the judges' reading of them (``judged.npz``)."""
    start = time.perf_counter()
    read = {role: j.read(translated) for role, j in inputs.plugins.judges.items()}
    h, real = inputs.data.holdout, inputs.real_read
    evidence = Evidence(
        source=unit_images(h.source), translated=translated, real=inputs.data.holdout_target, tumor_mask=inputs.data.holdout_mask,
        source_is_tumor=h.is_tumor, brain_fraction=h.brain_fraction, out_of_range=out_of_range,
        p_tumor=read["classifier"], p_tumor_real=real["classifier"],
        second_p_tumor=read.get("second_judge"), second_p_tumor_real=real.get("second_judge"),
        segmented=read.get("segmenter"), segmented_real=real.get("segmenter"),
    )  # fmt: skip
    scores, intervals = score_cell(inputs.plugins.metrics, evidence, seed=job.seed)
    examples = example_indices(h)
    judged = {"p_tumor": read["classifier"].astype(np.float32), "example_index": examples, "example_translated": translated[examples, 0].half().numpy()}
    if "second_judge" in read:
        judged["second_p_tumor"] = read["second_judge"].astype(np.float32)
    if "segmenter" in read:
        judged["example_segmented"] = read["segmenter"][examples, 0].numpy()
    return {"scores": scores, "ci95": intervals, "scored_with": job.scoring_key, "score_time_s": round(time.perf_counter() - start, 2)}, npz_bytes(**judged)


def rescore(inputs: RunInputs, job: CellJob, cell: dict[str, Any], translated: np.ndarray, out_of_range: np.ndarray) -> CellOutcome:
    """Score a stored cell's translations (float16 ``(N, H, W)``) again, without training: the judges
    or the metrics changed."""
    scored, judged = score(inputs, job, torch.from_numpy(translated.astype(np.float32))[:, None], out_of_range.astype(np.float64))
    return CellOutcome({**cell, **scored}, {JUDGED: judged})


def example_indices(holdout: SliceSet) -> np.ndarray:
    """Two fixed holdout slices for figures: the largest-tumor slice and the fullest healthy slice."""
    tumor = int(np.argmax(np.where(holdout.is_tumor, holdout.tumor_fraction, -1)))
    healthy = int(np.argmax(np.where(~holdout.is_tumor, holdout.brain_fraction, -1)))
    return np.array([tumor, healthy])


def save_examples(inputs: RunInputs, out: Path) -> None:
    """The example slices' source and real target, for the figures (``examples.npz``)."""
    h = inputs.data.holdout
    index = example_indices(h)
    arrays = {
        "source": h.source[index],
        "target": h.target[index],
        "tumor_mask": h.tumor_mask[index],
        "is_tumor": h.is_tumor[index],
        "holdout_index": index,
    }
    if "segmenter" in inputs.real_read:  # the segmentation judge's outline of the real targets
        arrays["segmented"] = inputs.real_read["segmenter"][index, 0].numpy()
    write_atomically(Path(out) / "examples.npz", lambda handle: np.savez_compressed(handle, **arrays))
