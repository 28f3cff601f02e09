"""Scoring a run folder's stored translations again, in a process that imports no plugin code but
benchbias's own, and comparing every score with what the results file says (``benchbias rescore``).

A results file is made by whoever ran the benchmark; its scores could have been edited, or made by a
scorer a plugin patched. The translations are what the translators returned, and each cell names
them by sha256 (``translations_sha256``). Rescoring them with benchbias's judges and metrics, beside a
copy of the benchmark file, tells whether the scores are of those translations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from benchbias.foundation.config import Benchmark, ConfigError
from benchbias.foundation.registry import load_registry
from benchbias.records.validation import load_results
from benchbias.run.cells import CellJob, cell_path, stored_translations, translations_sha256
from benchbias.run.compute import rescore
from benchbias.run.inputs import RunInputs, plugins_of, read_data, resolve_judges
from benchbias.run.options import select_device

TOLERANCE = 1e-9  # scores are computed in float64 from the same float16 translations: equal up to summation order


@dataclass
class RescoreReport:
    cells: int = 0
    differences: list[str] = field(default_factory=list)  # one line per score that differs, or cell that cannot be rescored

    @property
    def identical(self) -> bool:
        return self.cells > 0 and not self.differences


def rescore_folder(folder: Path, bench: Benchmark, data_path: str | None = None, show_progress: bool = False) -> RescoreReport:
    """Rescore every cell of the run folder ``folder`` (made with ``bench``) and compare."""
    results = load_results(folder / "results.json")
    if results["benchmark"]["protocol_hash"] != bench.protocol_hash():
        raise ConfigError(f"{folder}: made under another protocol than {bench.source_file} (protocol hash {results['benchmark']['protocol_hash'][:12]})")
    registry = load_registry(own_only=True)
    plugins = plugins_of(replace(bench, methods=()), registry)  # judges and metrics only: no translator is needed
    data = read_data(bench, plugins, registry, data_path, show_progress)
    device = select_device("cpu")
    judges, _ = resolve_judges(bench, plugins, data, folder / "judge", device, False, show_progress)
    report = RescoreReport()
    for role, record in judges.items():
        made_with = results["classifier"]["sha256"] if role == "classifier" else results.get("extra_judges", {}).get(role, {}).get("sha256")
        if made_with is not None and made_with != record["sha256"]:
            report.differences.append(f"judge {role}: the results were scored with {made_with[:12]}, this benchmark's is {record['sha256'][:12]}")
    if report.differences:
        return report
    inputs = RunInputs.with_judges(bench, plugins, data, device, False, {role: Path(r["file"]).read_bytes() for role, r in judges.items()})
    for method, entry in results["methods"].items():
        for cell in entry["cells"]:
            where = f"{method} r={cell['ratio']:g} seed={cell['seed']}"
            job = CellJob(method, cell["seed"], cell["ratio"], cell.get("fingerprint", ""), where, cell.get("scored_with", ""))
            path = cell_path(folder, job)
            try:
                translated, out_of_range = stored_translations(path)
            except (OSError, ValueError, KeyError) as exc:
                report.differences.append(f"{where}: its translations cannot be read ({type(exc).__name__})")
                continue
            if "translations_sha256" in cell and translations_sha256(translated) != cell["translations_sha256"]:
                report.differences.append(f"{where}: translations.npz is not the translations the cell names (translations_sha256)")
                continue
            again = rescore(inputs, job, cell, translated, out_of_range).cell
            report.cells += 1
            report.differences += [f"{where}: {line}" for line in differences(cell["scores"], again["scores"])]
    return report


def differences(claimed: dict[str, Any], rescored: dict[str, Any]) -> list[str]:
    """One line per score that the results claim and the rescoring does not give."""
    lines = []
    for name in sorted(set(claimed) | set(rescored)):
        a, b = claimed.get(name), rescored.get(name)
        if a is None and b is None:
            continue
        if a is None or b is None or not _close(a, b):
            lines.append(f"{name} {a} in the results, {b} rescored")
    return lines


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE) or (math.isnan(a) and math.isnan(b))
    return a == b
