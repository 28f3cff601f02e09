"""``benchbias data synth|prepare``: write the synthetic data set; read a data folder once through
MONAI into the prepared-slice cache that ``benchbias run`` reuses, and print what it holds."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from benchbias.cli.common import EXIT_BAD_INPUT, folder_problem, plugin_dir_option
from benchbias.foundation.config import Benchmark, DatasetConfig, SliceConfig, SynthSpec, slice_options


def add_parsers(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="data utilities").add_subparsers(dest="data_command", required=True)
    synth = data.add_parser("synth", help="write a seeded synthetic data set in the BraTS 2018-21 layout")
    synth.add_argument("out", type=Path)
    synth.add_argument("--subjects", type=int, default=SynthSpec.subjects)
    synth.add_argument("--seed", type=int, default=SynthSpec.seed)
    synth.add_argument("--shape", type=int, nargs=3, default=list(SynthSpec.shape), metavar=("X", "Y", "Z"))
    synth.set_defaults(handler=cmd_synth)
    prepare = data.add_parser("prepare", help="read a data folder once through MONAI into the prepared-slice cache")
    prepare_arguments(prepare)
    prepare.set_defaults(handler=cmd_prepare)


def cmd_synth(args: argparse.Namespace) -> int:
    from benchbias.data.synthetic_files import write_dataset

    if args.subjects < 1 or min(args.shape) < 16:
        print("benchbias: error: --subjects must be >= 1 and every --shape entry >= 16", file=sys.stderr)
        return EXIT_BAD_INPUT
    problem = folder_problem(args.out)
    if problem:
        print(f"benchbias: error: data synth {args.out}: {problem} (it writes a folder of subjects)", file=sys.stderr)
        return EXIT_BAD_INPUT
    paths = write_dataset(args.out, SynthSpec(subjects=args.subjects, seed=args.seed, shape=tuple(args.shape)), progress=True)
    print(f"wrote {len(paths)} subjects to {args.out}")
    return 0


def prepare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", help="data folder (default: the benchmark's dataset)")
    parser.add_argument("--layout", metavar="NAME", help="data layout (default: the benchmark's, else detected)")
    parser.add_argument("--benchmark", metavar="NAME_OR_PATH", help="take modalities, slice options and split from this benchmark")
    parser.add_argument("--out", type=Path, metavar="CACHE", help="cache folder (default: $BENCHBIAS_CACHE, where `benchbias run` looks)")
    parser.add_argument("--source", help="source modality (default: the benchmark's, else flair)")
    parser.add_argument("--target", help="target modality (default: the benchmark's, else t1)")
    parser.add_argument("--skip-bad", action="store_true", help="leave out unusable cases (listed, and recorded in the cache)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    plugin_dir_option(parser)


def describe_options(options: SliceConfig) -> str:
    return ", ".join(f"{k} {'-' if v is None else str(v).lower() if isinstance(v, bool) else v}" for k, v in slice_options(options).items())


def counts(is_tumor: np.ndarray) -> str:
    tumor = int(is_tumor.sum())
    return f"{tumor} tumor, {len(is_tumor) - tumor} healthy"


def any_unpaired(bench: Benchmark, registry) -> bool:
    from benchbias.foundation.registry import PluginError

    for method in bench.methods:
        try:
            if not registry.get("translator", method.plugin).cls.paired:
                return True
        except PluginError:
            return True  # unknown here: check the stricter (unpaired, disjoint) need
    return False


def cmd_prepare(args: argparse.Namespace) -> int:
    from benchbias.data import DataError
    from benchbias.data.protocol import check_capacity, held_out_subjects, split_subjects
    from benchbias.data.slice_cache import prepare_slices
    from benchbias.data.sources import cache_dir, resolve_data
    from benchbias.foundation.benchmark_files import find_benchmark, load_benchmark
    from benchbias.foundation.registry import load_registry

    registry = load_registry(args.plugin_dir)
    bench = load_benchmark(find_benchmark(args.benchmark)) if args.benchmark else None
    if bench is None and args.path is None:
        raise DataError("data prepare: give a data folder (PATH) or --benchmark")
    dataset = bench.dataset if bench else DatasetConfig(path=args.path)
    options = bench.slices if bench else SliceConfig()
    source, target = args.source or dataset.source, args.target or dataset.target
    cache = args.out or cache_dir()
    progress = not args.no_progress
    root, layout = resolve_data(dataset, registry, args.path, args.layout, progress, cache)
    how = "named" if (args.layout or dataset.layout) else ("synthetic" if dataset.synthetic and not args.path else "detected")
    print(f"data:     {root} (layout {layout.name}, {how}), {source} -> {target}")
    print(f"options:  {describe_options(options)}")

    prepared = prepare_slices(root, layout, source, target, options, cache / "slices", progress, skip_bad=args.skip_bad)
    slices = prepared.slices
    print(f"cases:    {len(prepared.cases)} read, {len(prepared.skipped)} skipped")
    for _, reason in prepared.skipped:
        print(f"  skipped {reason}")
    print(f"slices:   {len(slices)} kept: {counts(slices.is_tumor)}")

    if bench is not None:
        split = bench.split
        subjects = np.unique(slices.case_id)
        held = held_out_subjects(subjects, split, np.random.default_rng([split.seed, 0]))
        in_holdout = np.isin(slices.case_id, held)
        how = "listed" if isinstance(split.holdout_subjects, tuple) else f"{split.method} (seed {split.seed})"
        print(f"split:    {len(held)} of {len(subjects)} subjects held out, {how}: {', '.join(map(str, held))}")
        print(f"  train   {len(subjects) - len(held):>4} subjects: {counts(slices.is_tumor[~in_holdout])} slices")
        print(f"  holdout {len(held):>4} subjects: {counts(slices.is_tumor[in_holdout])} slices")

    size = prepared.cache.stat().st_size / 1e6 if prepared.cache and prepared.cache.is_file() else 0.0
    timing = f" in {prepared.meta.get('seconds', 0):.1f} s" if prepared.status != "reused" else ""
    print(f"cache:    {prepared.cache} ({prepared.status}{timing}, {size:.1f} MB)")

    if bench is not None:  # fail now, with the counts, if the protocol asks for more than the data holds
        domains = bench.domains
        parts = split_subjects(slices, bench.split, domains)
        check_capacity(parts.train, slices.is_tumor, domains, unpaired=any_unpaired(bench, registry))
        n_tumor = int(round(domains.holdout_size * domains.holdout_tumor_fraction))
        print(
            f"protocol: fits: holdout {domains.holdout_size} slices ({n_tumor} tumor + {domains.holdout_size - n_tumor} healthy), "
            f"domains {domains.source_size} / {domains.target_size} at every target fraction"
        )
    return 0
