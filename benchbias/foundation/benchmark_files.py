"""Benchmark files: YAML protocols read strictly and validated into a :class:`~benchbias.foundation.config.Benchmark`.

Every problem is reported as one line ``FILE: FIELD: problem`` through :class:`ConfigError`. A value
a file leaves out takes the default of its dataclass field.
"""

from __future__ import annotations

import os
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from benchbias.foundation.config import (
    CLASSIFIER_POPULATIONS,
    HALVES,
    NORMALIZATIONS,
    RESIZE_MODES,
    SAMPLINGS,
    SPLIT_METHODS,
    Benchmark,
    ClassifierConfig,
    ConfigError,
    DatasetConfig,
    DomainConfig,
    ModelConfig,
    PrecisionConfig,
    ReferenceCounts,
    SliceConfig,
    SplitConfig,
    SynthSpec,
)
from benchbias.foundation.yaml_files import read_yaml


def given(raw: dict, key: str, owner: type) -> Any:
    """``raw[key]``, else the default of the field ``key`` of the dataclass ``owner`` (a tuple as the
    list a file would hold)."""
    if key in raw:
        return raw[key]
    default = next(f.default for f in fields(owner) if f.name == key)
    assert default is not MISSING, f"{owner.__name__}.{key} has no default"
    return list(default) if isinstance(default, tuple) else default


# --------------------------------------------------------------------------------------------
# Validation helpers: each checks one value and raises ConfigError naming file and field.
# --------------------------------------------------------------------------------------------


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.source}: {where}: {problem}")

    def mapping(self, value: Any, where: str, allowed: set[str], required: set[str] = frozenset()) -> dict:
        if not isinstance(value, dict):
            raise self.fail(where, f"must be a mapping, got {type(value).__name__}")
        for key in value:
            if key not in allowed:
                shown = key if isinstance(key, str) and key.isprintable() and key.strip() else repr(key)
                raise self.fail(f"{where}.{shown}" if where else shown, f"unknown key (allowed: {', '.join(sorted(allowed))})")
        for key in sorted(required):
            if key not in value:
                raise self.fail(f"{where}.{key}" if where else key, "is required")
        return value

    def integer(self, value: Any, where: str, minimum: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"must be an integer, got {type(value).__name__} {value!r}")
        if minimum is not None and value < minimum:
            raise self.fail(where, f"must be >= {minimum}, got {value}")
        return value

    def fraction(self, value: Any, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(where, f"must be a number, got {type(value).__name__} {value!r}")
        if not 0.0 <= value <= 1.0:
            raise self.fail(where, f"must be a fraction in [0, 1], got {value}")
        return float(value)

    def string(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(where, f"must be a non-empty string, got {type(value).__name__} {value!r}")
        return value

    def choice(self, value: Any, where: str, choices: tuple) -> Any:
        if value not in choices:
            shown = ", ".join("null" if c is None else str(c) for c in choices)
            raise self.fail(where, f"must be one of {shown}, got {value!r}")
        return value

    def boolean(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(where, f"must be true or false, got {value!r}")
        return value

    def image_size(self, value: Any, where: str, multiple: int = 1) -> int | tuple[int, int]:
        """An int (a square) or ``[rows, columns]``, each side >= 16 and a multiple of ``multiple``;
        ``[n, n]`` is the int ``n``, so that it hashes as the square it is."""
        if isinstance(value, list):
            if len(value) != 2:
                raise self.fail(where, f"must be an integer (a square) or [rows, columns], got a list of {len(value)}")
            sides = [self.integer(v, f"{where}[{i}]", 16) for i, v in enumerate(value)]
            names = [f"{where}[{i}]" for i in range(2)]
        elif isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"must be an integer (a square) or [rows, columns], got {type(value).__name__} {value!r}")
        else:
            sides, names = [self.integer(value, where, 16)], [where]
        for side, name in zip(sides, names):
            if side % multiple:
                raise self.fail(name, f"must be divisible by {multiple} (two stride-2 stages), got {side}")
        return sides[0] if len(set(sides)) == 1 else (sides[0], sides[1])

    def sequence(self, value: Any, where: str) -> list:
        if not isinstance(value, list) or not value:
            raise self.fail(where, f"must be a non-empty list, got {type(value).__name__} {value!r}")
        return value


def _dataset(r: _Reader, raw: dict) -> DatasetConfig:
    raw = r.mapping(raw, "dataset", {"synthetic", "path", "layout", "source", "target"})
    synthetic = path = layout = None
    if ("synthetic" in raw) == ("path" in raw):
        raise r.fail("dataset", "give exactly one of 'synthetic' or 'path'")
    if "synthetic" in raw:
        s = r.mapping(raw["synthetic"] or {}, "dataset.synthetic", {"subjects", "seed", "shape"})
        shape = tuple(
            r.integer(v, f"dataset.synthetic.shape[{i}]", 16) for i, v in enumerate(r.sequence(given(s, "shape", SynthSpec), "dataset.synthetic.shape"))
        )
        if len(shape) != 3:
            raise r.fail("dataset.synthetic.shape", f"must have 3 entries (x, y, z), got {len(shape)}")
        synthetic = SynthSpec(
            subjects=r.integer(given(s, "subjects", SynthSpec), "dataset.synthetic.subjects", 2),
            seed=r.integer(given(s, "seed", SynthSpec), "dataset.synthetic.seed", 0),
            shape=shape,
        )
    else:
        path = r.string(raw["path"], "dataset.path")
        layout = r.string(raw["layout"], "dataset.layout") if "layout" in raw else None
    return DatasetConfig(
        synthetic=synthetic,
        path=path,
        layout=layout,
        source=r.string(given(raw, "source", DatasetConfig), "dataset.source"),
        target=r.string(given(raw, "target", DatasetConfig), "dataset.target"),
    )


def _model(r: _Reader, raw: Any, where: str, name: str | None = None) -> ModelConfig:
    """A method (keyed by ``name``, optionally ``plugin: OTHER`` to run one plugin under several
    settings) or the classifier (``name:`` is the plugin)."""
    raw = r.mapping(raw or {}, where, {"name", "params", "steps"} if name is None else {"plugin", "params", "steps", "optional"})
    params = raw.get("params") or {}
    if not isinstance(params, dict):
        raise r.fail(f"{where}.params", f"must be a mapping, got {type(params).__name__}")
    name = name if name is not None else r.string(raw.get("name"), f"{where}.name")
    return ModelConfig(
        name=name,
        plugin=r.string(raw.get("plugin", name), f"{where}.plugin"),
        params=dict(params),
        steps=r.integer(given(raw, "steps", ModelConfig), f"{where}.steps", 0),
    )


def _classifier(r: _Reader, raw: Any, where: str = "classifier") -> ClassifierConfig:
    raw = r.mapping(raw or {}, where, {"name", "params", "steps", "population", "image_size"})
    model = _model(r, {k: v for k, v in raw.items() if k in ("name", "params", "steps")}, where)
    if not model.steps:
        raise r.fail(f"{where}.steps", "is required (the classifier's training budget)")
    size = raw.get("image_size")
    return ClassifierConfig(
        name=model.name,
        plugin=model.plugin,
        params=model.params,
        steps=model.steps,
        population=r.choice(given(raw, "population", ClassifierConfig), f"{where}.population", CLASSIFIER_POPULATIONS),
        image_size=None if size is None else r.image_size(size, f"{where}.image_size"),
    )


SEGMENTER = "monai-unet"


def _segmenter(r: _Reader, raw: Any) -> ModelConfig:
    raw = r.mapping(raw or {}, "segmenter", {"params", "steps"}, required={"steps"})
    params = raw.get("params") or {}
    if not isinstance(params, dict):
        raise r.fail("segmenter.params", f"must be a mapping, got {type(params).__name__}")
    return ModelConfig(SEGMENTER, SEGMENTER, dict(params), r.integer(raw["steps"], "segmenter.steps", 1))


def _subject_order(r: _Reader, raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    order = tuple(r.string(v, f"split.subject_order[{i}]") for i, v in enumerate(r.sequence(raw, "split.subject_order")))
    if len(set(order)) != len(order):
        raise r.fail("split.subject_order", "contains duplicates")
    return order


def _reference(r: _Reader, raw: Any, fractions: int) -> ReferenceCounts:
    names = {f.name for f in fields(ReferenceCounts)}
    given_counts = r.mapping(raw or {}, "reference", names)
    values: dict[str, Any] = {}
    for key, value in given_counts.items():
        where = f"reference.{key}"
        if key == "domain_slices":
            values[key] = tuple(r.integer(v, f"{where}[{i}]", 0) for i, v in enumerate(r.sequence(value, where)))
            if len(values[key]) != fractions:
                raise r.fail(where, f"must give one count per target fraction ({fractions}), got {len(values[key])}")
        elif key.endswith("_max"):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise r.fail(where, f"must be a positive number, got {value!r}")
            values[key] = float(value)
        else:
            values[key] = r.integer(value, where, 0)
    return ReferenceCounts(**values)


def _precision(r: _Reader, raw: Any) -> PrecisionConfig:
    p = r.mapping(raw or {}, "precision", {"amp", "tf32"})
    pinned = {key: None if p.get(key) is None else r.boolean(p[key], f"precision.{key}") for key in ("amp", "tf32")}
    return PrecisionConfig(**pinned)


TOP_LEVEL = {
    "name",
    "description",
    "dataset",
    "slices",
    "split",
    "domains",
    "training",
    "classifier",
    "segmenter",
    "second_judge",
    "methods",
    "seeds",
    "paper_claims",
    "precision",
    "reference",
}


def parse_benchmark(raw: Any, source: str) -> Benchmark:
    """Validate a parsed YAML document; ``source`` names it in error messages."""
    r = _Reader(source)
    raw = r.mapping(raw, "", TOP_LEVEL, required={"name", "dataset", "methods"})
    default_steps, models_per_program = 0, 1
    if "training" in raw:
        training = r.mapping(raw["training"], "training", {"steps", "models_per_program"})
        default_steps = r.integer(training["steps"], "training.steps", 1) if "steps" in training else 0
        models_per_program = r.integer(given(training, "models_per_program", Benchmark), "training.models_per_program", 1)

    s = r.mapping(
        raw.get("slices", {}),
        "slices",
        {"image_size", "min_brain_fraction", "min_tumor_fraction", "drop_ambiguous", "half", "normalization", "resize_mode", "network_max"},
    )
    network_max = r.fraction(given(s, "network_max", SliceConfig), "slices.network_max")
    if network_max <= 0:
        raise r.fail("slices.network_max", f"must be in (0, 1] (slices enter the networks as [-1, -1 + 2 * network_max]), got {s['network_max']}")
    slices = SliceConfig(
        image_size=r.image_size(given(s, "image_size", SliceConfig), "slices.image_size", multiple=4),
        min_brain_fraction=r.fraction(given(s, "min_brain_fraction", SliceConfig), "slices.min_brain_fraction"),
        min_tumor_fraction=r.fraction(given(s, "min_tumor_fraction", SliceConfig), "slices.min_tumor_fraction"),
        drop_ambiguous=r.boolean(given(s, "drop_ambiguous", SliceConfig), "slices.drop_ambiguous"),
        half=r.choice(given(s, "half", SliceConfig), "slices.half", HALVES),
        normalization=r.choice(given(s, "normalization", SliceConfig), "slices.normalization", NORMALIZATIONS),
        resize_mode=r.choice(given(s, "resize_mode", SliceConfig), "slices.resize_mode", RESIZE_MODES),
        network_max=network_max,
    )

    sp = r.mapping(raw.get("split", {}), "split", {"holdout_subjects", "seed", "method", "subject_order"})
    held = given(sp, "holdout_subjects", SplitConfig)
    if isinstance(held, list):
        held = tuple(r.string(v, f"split.holdout_subjects[{i}]") for i, v in enumerate(r.sequence(held, "split.holdout_subjects")))
        if len(set(held)) != len(held):
            raise r.fail("split.holdout_subjects", "contains duplicates")
    else:
        held = r.integer(held, "split.holdout_subjects", 1)
    split = SplitConfig(
        holdout_subjects=held,
        seed=r.integer(given(sp, "seed", SplitConfig), "split.seed", 0),
        method=r.choice(given(sp, "method", SplitConfig), "split.method", SPLIT_METHODS),
        subject_order=_subject_order(r, sp.get("subject_order")),
    )

    d = r.mapping(
        raw.get("domains", {}),
        "domains",
        {
            "source_size",
            "target_size",
            "source_tumor_fraction",
            "holdout_size",
            "holdout_tumor_fraction",
            "target_fractions",
            "target_overlaps_source",
            "paired_from_target",
            "sampling",
        },
    )
    fractions = tuple(
        r.fraction(v, f"domains.target_fractions[{i}]")
        for i, v in enumerate(r.sequence(given(d, "target_fractions", DomainConfig), "domains.target_fractions"))
    )
    if len(set(fractions)) != len(fractions):
        raise r.fail("domains.target_fractions", "contains duplicates")
    domains = DomainConfig(
        source_size=r.integer(given(d, "source_size", DomainConfig), "domains.source_size", 1),
        target_size=r.integer(given(d, "target_size", DomainConfig), "domains.target_size", 1),
        source_tumor_fraction=r.fraction(given(d, "source_tumor_fraction", DomainConfig), "domains.source_tumor_fraction"),
        holdout_size=r.integer(given(d, "holdout_size", DomainConfig), "domains.holdout_size", 2),
        target_fractions=fractions,
        holdout_tumor_fraction=r.fraction(given(d, "holdout_tumor_fraction", DomainConfig), "domains.holdout_tumor_fraction"),
        target_overlaps_source=r.boolean(given(d, "target_overlaps_source", DomainConfig), "domains.target_overlaps_source"),
        paired_from_target=r.boolean(given(d, "paired_from_target", DomainConfig), "domains.paired_from_target"),
        sampling=r.choice(given(d, "sampling", DomainConfig), "domains.sampling", SAMPLINGS),
    )
    if domains.sampling == "with_replacement" and not domains.target_overlaps_source:
        raise r.fail("domains.sampling", "with_replacement draws every domain from all training slices: set target_overlaps_source: true")
    if domains.holdout_size % 2 and domains.holdout_tumor_fraction == 0.5:
        raise r.fail("domains.holdout_size", f"must be even (the holdout set is balanced), got {domains.holdout_size}")

    methods_raw = raw["methods"]
    if not isinstance(methods_raw, dict) or not methods_raw:
        raise r.fail("methods", "must be a non-empty mapping of method name to {params, steps}")
    methods, optional = [], []
    for name, body in methods_raw.items():
        method = _model(r, body, f"methods.{name}", name=str(name))
        if isinstance(body, dict) and r.boolean(body.get("optional", False), f"methods.{name}.optional"):
            optional.append(method.name)
        if not method.steps:
            if not default_steps:
                raise r.fail(f"methods.{name}.steps", "is required when training.steps is not given")
            method = ModelConfig(method.name, method.plugin, method.params, default_steps)
        methods.append(method)

    classifier = _classifier(r, raw.get("classifier", {"name": "impartial-cnn"}))

    seeds = tuple(r.integer(v, f"seeds[{i}]", 0) for i, v in enumerate(r.sequence(raw.get("seeds", [0]), "seeds")))
    if len(set(seeds)) != len(seeds):
        raise r.fail("seeds", "contains duplicates")
    if optional and len(optional) == len(methods):
        raise r.fail("methods", "every method is optional: a plain run would train none")

    return Benchmark(
        name=r.string(raw["name"], "name"),
        description=str(raw.get("description", "")),
        dataset=_dataset(r, raw["dataset"]),
        slices=slices,
        split=split,
        domains=domains,
        classifier=classifier,
        methods=tuple(methods),
        seeds=seeds,
        training_steps=default_steps,
        models_per_program=models_per_program,
        optional_methods=tuple(optional),
        segmenter=_segmenter(r, raw["segmenter"]) if raw.get("segmenter") is not None else None,
        second_judge=_classifier(r, raw["second_judge"], "second_judge") if raw.get("second_judge") is not None else None,
        paper_claims=r.boolean(given(raw, "paper_claims", Benchmark), "paper_claims"),
        precision=_precision(r, raw.get("precision")),
        reference=_reference(r, raw.get("reference"), len(fractions)),
        source_file=source,
    )


def load_benchmark(path: Path) -> Benchmark:
    return parse_benchmark(read_yaml(path), str(path))


def benchmark_dirs() -> list[Path]:
    """Where benchmark names are looked up: ./benchmarks, then the installed benchmark files."""
    import benchbias_benchmarks

    return [Path.cwd() / "benchmarks", Path(benchbias_benchmarks.__file__).parent]


def find_benchmark(name_or_path: str) -> Path:
    """A path to a YAML file, or the name of a file in one of :func:`benchmark_dirs`."""
    candidate = Path(os.path.expanduser(name_or_path))
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        if not candidate.is_file():
            raise ConfigError(f"{candidate}: benchmark file does not exist")
        return candidate
    for folder in benchmark_dirs():
        path = folder / f"{name_or_path}.yaml"
        if path.is_file():
            return path
    known = sorted({p.stem for folder in benchmark_dirs() if folder.is_dir() for p in folder.glob("*.yaml")})
    raise ConfigError(f"benchmark '{name_or_path}' not found (known: {', '.join(known)})")
