"""Benchmark files: YAML protocols, validated on load into frozen dataclasses.

Every problem is reported as one line ``FILE: FIELD: problem`` through :class:`ConfigError`.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from benchbias.errors import BenchbiasError

DEFAULT_FRACTIONS = tuple(round(0.1 * i, 1) for i in range(11))


class ConfigError(BenchbiasError, ValueError):
    """A benchmark file is invalid; the message names the file and the field."""


@dataclass(frozen=True)
class SyntheticData:
    subjects: int = 60
    seed: int = 0
    shape: tuple[int, int, int] = (64, 64, 40)


@dataclass(frozen=True)
class DatasetConfig:
    synthetic: SyntheticData | None = None
    path: str | None = None
    layout: str | None = None
    source: str = "flair"
    target: str = "t1"


HALVES = (None, "left", "right")
NORMALIZATIONS = ("percentile", "max", "dataset_max")
SPLIT_METHODS = ("random", "ordered")


def image_shape(size: int | tuple[int, int]) -> tuple[int, int]:
    """(rows, columns) of an ``image_size``: an int is a square."""
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


@dataclass(frozen=True)
class SliceConfig:
    # Slices are resized to this in plane: an int (square), or (rows, columns) of the slice arrays.
    # After RAS orientation rows run along the patient's left-right axis, columns posterior-anterior.
    image_size: int | tuple[int, int] = 64
    min_brain_fraction: float = 0.30
    min_tumor_fraction: float = 0.01
    drop_ambiguous: bool = True
    half: str | None = None  # keep one half of the axial plane: "left" / "right" of the patient (RAS)
    normalization: str = "percentile"  # "percentile" (per volume 0..99.5th), "max" (per volume), "dataset_max"
    # What the translators see: slices in [0, 1] enter (and leave) the networks as
    # [-1, -1 + 2 * network_max]; 1.0 is the full [-1, 1]. How slices are presented, not which slices:
    # it is not part of the prepared-slice cache key or the data identity (see :func:`slice_options`).
    network_max: float = 1.0

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) of a prepared slice."""
        return image_shape(self.image_size)


# SliceConfig fields that say how slices are presented to the networks, not which slices are prepared.
PRESENTATION_ONLY = ("network_max",)


def slice_options(options: SliceConfig) -> dict[str, Any]:
    """The slice options that define the prepared slices (the cache key, the data identity and its
    description): every field but the presentation-only ones."""
    return {k: v for k, v in asdict(options).items() if k not in PRESENTATION_ONLY}


@dataclass(frozen=True)
class SplitConfig:
    holdout_subjects: int | tuple[str, ...] = 10  # how many subjects to hold out, or their case ids
    seed: int = 0
    method: str = "random"  # "random" (seeded) or "ordered" (sorted case ids, the last ones held out)


@dataclass(frozen=True)
class DomainConfig:
    source_size: int = 400
    target_size: int = 400
    source_tumor_fraction: float = 0.5
    holdout_size: int = 200
    target_fractions: tuple[float, ...] = DEFAULT_FRACTIONS
    holdout_tumor_fraction: float = 0.5
    # False: the target domain is drawn from training slices outside the source domain (disjoint).
    # True: from all training slices, as the paper's notebook drew domain B independently of A.
    target_overlaps_source: bool = False


@dataclass(frozen=True)
class ModelConfig:
    name: str
    plugin: str
    params: dict[str, Any] = field(default_factory=dict)
    steps: int = 0


CLASSIFIER_POPULATIONS = ("train_targets", "fraction_extremes")


@dataclass(frozen=True)
class ClassifierConfig(ModelConfig):
    """The judge: a classifier plugin (``name``), its params and step budget, and what it is trained
    on and at which size."""

    # "train_targets": the real target slices of every training subject; "fraction_extremes": the real
    # target domains drawn at target fractions 0 and 1 (all healthy + all tumor), as the paper's notebook.
    population: str = "train_targets"
    # The size the judge reads its inputs at (real slices and translations alike, resized); None: the
    # slice size. An int (square) or (rows, columns), as slices.image_size.
    image_size: int | tuple[int, int] | None = None


@dataclass(frozen=True)
class Benchmark:
    name: str
    description: str
    dataset: DatasetConfig
    slices: SliceConfig
    split: SplitConfig
    domains: DomainConfig
    classifier: ClassifierConfig
    methods: tuple[ModelConfig, ...]
    seeds: tuple[int, ...]
    training_steps: int = 0  # the default step budget of a method (``training.steps``)
    source_file: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("source_file")
        for section, key, default in ADDED_LATER:
            if data[section][key] == default:  # so that benchmarks that do not use it keep their hashes
                del data[section][key]
        return data

    def hash(self) -> str:
        """sha256 of the canonical JSON of the whole resolved benchmark, methods included."""
        return stable_hash(self.to_dict())

    def protocol_hash(self) -> str:
        """sha256 of everything but the methods and the seeds: runs with equal protocol hashes are
        comparable. Seeds are replicates (the classifier's seed is the split seed, inside the protocol)."""
        return stable_hash(protocol_of(self.to_dict()))


# Options added after leaderboards and judges were pinned: they enter the resolved benchmark (and its
# hashes) only when set to something other than their default.
ADDED_LATER = (
    ("domains", "target_overlaps_source", False),
    ("slices", "network_max", 1.0),
    ("classifier", "population", "train_targets"),
    ("classifier", "image_size", None),
)

NOT_PROTOCOL = ("methods", "description", "seeds", "training_steps")


def protocol_of(config: dict[str, Any]) -> dict[str, Any]:
    """The part of a resolved benchmark (``Benchmark.to_dict()``) that its protocol hash covers."""
    return {k: v for k, v in config.items() if k not in NOT_PROTOCOL}


def with_translators(bench: Benchmark, plugins: list[str], params: dict[str, Any]) -> Benchmark:
    """``bench`` with extra methods, one per translator plugin (the ``run --translator`` option),
    trained for the benchmark's ``training.steps`` with ``params`` over the plugin's defaults."""
    names = {m.name for m in bench.methods}
    for plugin in plugins:
        if plugin in names:
            raise ConfigError(f"--translator {plugin}: {bench.source_file} already has a method of that name; use --methods {plugin}")
    if plugins and not bench.training_steps:
        raise ConfigError(f"{bench.source_file}: training.steps: is required to run --translator (the default step budget)")
    extra = tuple(ModelConfig(p, p, dict(params), bench.training_steps) for p in plugins)
    return replace(bench, methods=bench.methods + extra)


def stable_hash(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=list).encode()).hexdigest()


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
        shape = tuple(r.integer(v, f"dataset.synthetic.shape[{i}]", 16) for i, v in enumerate(r.sequence(s.get("shape", [64, 64, 40]), "dataset.synthetic.shape")))
        if len(shape) != 3:
            raise r.fail("dataset.synthetic.shape", f"must have 3 entries (x, y, z), got {len(shape)}")
        synthetic = SyntheticData(
            subjects=r.integer(s.get("subjects", 60), "dataset.synthetic.subjects", 2),
            seed=r.integer(s.get("seed", 0), "dataset.synthetic.seed", 0),
            shape=shape,
        )
    else:
        path = r.string(raw["path"], "dataset.path")
        layout = r.string(raw["layout"], "dataset.layout") if "layout" in raw else None
    return DatasetConfig(
        synthetic=synthetic,
        path=path,
        layout=layout,
        source=r.string(raw.get("source", "flair"), "dataset.source"),
        target=r.string(raw.get("target", "t1"), "dataset.target"),
    )


def _model(r: _Reader, raw: Any, where: str, name: str | None = None) -> ModelConfig:
    """A method (keyed by ``name``, optionally ``plugin: OTHER`` to run one plugin under several
    settings) or the classifier (``name:`` is the plugin)."""
    raw = r.mapping(raw or {}, where, {"name", "params", "steps"} if name is None else {"plugin", "params", "steps"})
    params = raw.get("params") or {}
    if not isinstance(params, dict):
        raise r.fail(f"{where}.params", f"must be a mapping, got {type(params).__name__}")
    name = name if name is not None else r.string(raw.get("name"), f"{where}.name")
    return ModelConfig(
        name=name,
        plugin=r.string(raw.get("plugin", name), f"{where}.plugin"),
        params=dict(params),
        steps=r.integer(raw.get("steps", 0), f"{where}.steps", 0),
    )


def _classifier(r: _Reader, raw: Any) -> ClassifierConfig:
    raw = r.mapping(raw or {}, "classifier", {"name", "params", "steps", "population", "image_size"})
    model = _model(r, {k: v for k, v in raw.items() if k in ("name", "params", "steps")}, "classifier")
    if not model.steps:
        raise r.fail("classifier.steps", "is required (the classifier's training budget)")
    size = raw.get("image_size")
    return ClassifierConfig(
        name=model.name,
        plugin=model.plugin,
        params=model.params,
        steps=model.steps,
        population=r.choice(raw.get("population", "train_targets"), "classifier.population", CLASSIFIER_POPULATIONS),
        image_size=None if size is None else r.image_size(size, "classifier.image_size"),
    )


TOP_LEVEL = {"name", "description", "dataset", "slices", "split", "domains", "training", "classifier", "methods", "seeds"}


def parse_benchmark(raw: Any, source: str) -> Benchmark:
    """Validate a parsed YAML document; ``source`` names it in error messages."""
    r = _Reader(source)
    raw = r.mapping(raw, "", TOP_LEVEL, required={"name", "dataset", "methods"})
    default_steps = 0
    if "training" in raw:
        training = r.mapping(raw["training"], "training", {"steps"})
        default_steps = r.integer(training.get("steps", 0), "training.steps", 1)

    s = r.mapping(
        raw.get("slices", {}), "slices",
        {"image_size", "min_brain_fraction", "min_tumor_fraction", "drop_ambiguous", "half", "normalization", "network_max"},
    )
    network_max = r.fraction(s.get("network_max", 1.0), "slices.network_max")
    if network_max <= 0:
        raise r.fail("slices.network_max", f"must be in (0, 1] (slices enter the networks as [-1, -1 + 2 * network_max]), got {s['network_max']}")
    slices = SliceConfig(
        image_size=r.image_size(s.get("image_size", 64), "slices.image_size", multiple=4),
        min_brain_fraction=r.fraction(s.get("min_brain_fraction", 0.30), "slices.min_brain_fraction"),
        min_tumor_fraction=r.fraction(s.get("min_tumor_fraction", 0.01), "slices.min_tumor_fraction"),
        drop_ambiguous=r.boolean(s.get("drop_ambiguous", True), "slices.drop_ambiguous"),
        half=r.choice(s.get("half"), "slices.half", HALVES),
        normalization=r.choice(s.get("normalization", "percentile"), "slices.normalization", NORMALIZATIONS),
        network_max=network_max,
    )

    sp = r.mapping(raw.get("split", {}), "split", {"holdout_subjects", "seed", "method"})
    held = sp.get("holdout_subjects", 10)
    if isinstance(held, list):
        held = tuple(r.string(v, f"split.holdout_subjects[{i}]") for i, v in enumerate(r.sequence(held, "split.holdout_subjects")))
        if len(set(held)) != len(held):
            raise r.fail("split.holdout_subjects", "contains duplicates")
    else:
        held = r.integer(held, "split.holdout_subjects", 1)
    split = SplitConfig(
        holdout_subjects=held,
        seed=r.integer(sp.get("seed", 0), "split.seed", 0),
        method=r.choice(sp.get("method", "random"), "split.method", SPLIT_METHODS),
    )

    d = r.mapping(
        raw.get("domains", {}), "domains",
        {"source_size", "target_size", "source_tumor_fraction", "holdout_size", "holdout_tumor_fraction", "target_fractions", "target_overlaps_source"},
    )
    fractions = tuple(r.fraction(v, f"domains.target_fractions[{i}]") for i, v in enumerate(r.sequence(d.get("target_fractions", list(DEFAULT_FRACTIONS)), "domains.target_fractions")))
    if len(set(fractions)) != len(fractions):
        raise r.fail("domains.target_fractions", "contains duplicates")
    domains = DomainConfig(
        source_size=r.integer(d.get("source_size", 400), "domains.source_size", 1),
        target_size=r.integer(d.get("target_size", 400), "domains.target_size", 1),
        source_tumor_fraction=r.fraction(d.get("source_tumor_fraction", 0.5), "domains.source_tumor_fraction"),
        holdout_size=r.integer(d.get("holdout_size", 200), "domains.holdout_size", 2),
        target_fractions=fractions,
        holdout_tumor_fraction=r.fraction(d.get("holdout_tumor_fraction", 0.5), "domains.holdout_tumor_fraction"),
        target_overlaps_source=r.boolean(d.get("target_overlaps_source", False), "domains.target_overlaps_source"),
    )
    if domains.holdout_size % 2 and domains.holdout_tumor_fraction == 0.5:
        raise r.fail("domains.holdout_size", f"must be even (the holdout set is balanced), got {domains.holdout_size}")

    methods_raw = raw["methods"]
    if not isinstance(methods_raw, dict) or not methods_raw:
        raise r.fail("methods", "must be a non-empty mapping of method name to {params, steps}")
    methods = []
    for name, body in methods_raw.items():
        method = _model(r, body, f"methods.{name}", name=str(name))
        if not method.steps:
            if not default_steps:
                raise r.fail(f"methods.{name}.steps", "is required when training.steps is not given")
            method = ModelConfig(method.name, method.plugin, method.params, default_steps)
        methods.append(method)

    classifier = _classifier(r, raw.get("classifier", {"name": "impartial-cnn"}))

    seeds = tuple(r.integer(v, f"seeds[{i}]", 0) for i, v in enumerate(r.sequence(raw.get("seeds", [0]), "seeds")))
    if len(set(seeds)) != len(seeds):
        raise r.fail("seeds", "contains duplicates")

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
        source_file=source,
    )


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing duplicate keys (PyYAML silently keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                mark = key_node.start_mark
                raise ConfigError(f"line {mark.line + 1}, column {mark.column + 1}: duplicate key {key!r}")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> Any:
    """Parse a YAML file strictly: UTF-8 text, valid syntax, no duplicate keys, not empty.
    Every problem is one line naming the file (and the line and column where YAML says)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); a benchmark file is YAML") from None
    if "\x00" in text:
        raise ConfigError(f"{path}: is not a text file (contains NUL bytes); a benchmark file is YAML")
    if not text.strip() or all(line.lstrip().startswith("#") for line in text.splitlines() if line.strip()):
        raise ConfigError(f"{path}: is empty")
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(f"{path}: invalid YAML: {where}{exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {' '.join(str(exc).split())}") from None


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
