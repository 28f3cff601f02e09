"""``benchbias run``, ``selftest`` and ``plan``: running a benchmark, its canaries, and planning a run."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchbias.cli.common import (
    benchmark_argument,
    check_results_folder,
    executor_options,
    executor_settings,
    jobs_setting,
    key_values,
    plugin_dir_option,
    set_threads,
    with_seeds,
)
from benchbias.foundation.config import ConfigError


def known_benchmarks() -> str:
    """The benchmark names ``run`` finds, each with the first sentence of its description."""
    import textwrap

    import yaml

    from benchbias.foundation.benchmark_files import benchmark_dirs

    lines, seen = [], set()
    for folder in benchmark_dirs():
        for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
            if path.stem in seen:
                continue
            seen.add(path.stem)
            try:
                description = " ".join(str(yaml.safe_load(path.read_text(encoding="utf-8")).get("description", "")).split())
            except (OSError, ValueError, AttributeError, yaml.YAMLError):
                description = "(unreadable)"
            first = description.split(". ")[0].rstrip(".")
            lines.append(textwrap.fill(first, 100, initial_indent=f"  {path.stem:<17} ", subsequent_indent=" " * 20))
    return "known benchmarks (give a name, or the path of a YAML file):\n" + "\n".join(lines)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser(
        "run", help="run a benchmark (default: synthetic-quick)", epilog=known_benchmarks(), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    benchmark_argument(run)
    run.add_argument("--methods", nargs="+", default=[], metavar="NAME", help="run only these methods of the benchmark")
    run.add_argument("--out", type=Path, help="results folder (default: benchbias-runs/<benchmark>); a rerun resumes it")
    run.add_argument("--data", metavar="PATH", help="data folder, overriding dataset.path")
    run.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1, ...")
    executor_options(run)
    precision_options(run)
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument(
        "--isolate", action="store_true",
        help="train and translate each program in an OS sandbox (bubblewrap) that cannot read the holdout's targets, the judges, "
        "the cache or the run folder, and has no network; CPU only",
    )  # fmt: skip
    run.add_argument(
        "--translator", action="append", default=[], metavar="PLUGIN",
        help="also run this translator plugin as a method (repeatable), beside the --methods named; without --methods only these run",
    )  # fmt: skip
    run.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE",
        help="a parameter of the --translator plugins (repeatable; VALUE is read as YAML, e.g. filters=8)",
    )  # fmt: skip
    run.add_argument(
        "--seeds", type=int, nargs="+", metavar="N",
        help="translator seeds (replicates) instead of the benchmark's; the protocol hash does not change",
    )  # fmt: skip
    run.add_argument("--submit", action="store_true", help="add the results to leaderboards/<benchmark>.json/.md")
    run.add_argument("--replace", action="store_true", help="with --submit: overwrite entries of the same method and version")
    plugin_dir_option(run)
    run.set_defaults(handler=cmd_run)

    selftest = sub.add_parser("selftest", help="run the canary translators on a benchmark and check that its verdict catches each (exit 1 if not)")
    benchmark_argument(selftest)
    selftest.add_argument("--out", type=Path, help="results folder (default: benchbias-runs/<benchmark>-selftest); a rerun resumes it")
    selftest.add_argument("--data", metavar="PATH", help="data folder, overriding dataset.path")
    selftest.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1, ...")
    executor_options(selftest)
    selftest.add_argument("--seeds", type=int, nargs="+", metavar="N", help="translator seeds instead of the benchmark's")
    selftest.add_argument("--no-progress", action="store_true", help="no progress bars")
    plugin_dir_option(selftest)
    selftest.set_defaults(handler=cmd_selftest)

    plan = sub.add_parser("plan", help="before a long run: the split, every fraction's domains and feasibility, cells, and a compute estimate")
    benchmark_argument(plan)
    plan.add_argument("--data", metavar="PATH", help="data folder, overriding dataset.path")
    plan.add_argument("--methods", nargs="+", default=[], metavar="NAME", help="plan only these methods (default: the run's, optional ones left out)")
    plan.add_argument("--device", default="auto", help="where to measure the time per step: auto, cpu, cuda, ...")
    plan.add_argument("--jobs", type=int, metavar="N", help="worker processes of the run to plan for (default as run: $BENCHBIAS_JOBS, else one per CPU core)")
    plan.add_argument("--threads", type=int, help="torch threads per worker of the run to plan for (default as run: 1; with --jobs 1, torch's choice)")
    plan.add_argument(
        "--measure-steps", type=int, default=0, metavar="N",
        help="also estimate the compute: N training steps timed per method after 2 warm-up steps, the median counts "
        "(default 0: no estimate; the rest of the plan needs no measuring)",
    )  # fmt: skip
    plan.add_argument("--no-progress", action="store_true", help="no progress bars")
    plugin_dir_option(plan)
    plan.set_defaults(handler=cmd_plan)


def precision_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("precision on CUDA (a benchmark may pin it; CPU runs are float32)")
    group.add_argument(
        "--amp", action=argparse.BooleanOptionalAction, default=None,
        help="bfloat16 autocast of the forward passes (default: as the benchmark pins it, else on)",
    )  # fmt: skip
    group.add_argument(
        "--tf32", action=argparse.BooleanOptionalAction, default=None,
        help="TF32 convolutions and matrix products (default: as the benchmark pins it, else torch's defaults)",
    )  # fmt: skip
    group.add_argument("--override-precision", action="store_true", help="run at other settings than the benchmark pins (results.json records which)")


def parse_params(items: list[str]) -> dict:
    return key_values(items, "--param")


def cmd_run(args: argparse.Namespace) -> int:
    from benchbias.foundation.benchmark_files import find_benchmark, load_benchmark
    from benchbias.foundation.config import with_translators
    from benchbias.foundation.registry import load_registry
    from benchbias.foundation.scoretable import ScoreTable
    from benchbias.leaderboard import check_before_run, submit
    from benchbias.report.tables import COMPACT, MORE_NOTE, cell_rows, more_rows_of_results, ranked_rows_of_results, second_judge_sentence
    from benchbias.report.training import loss_summary
    from benchbias.run import Run, RunOptions
    from benchbias.scoring.claims_section import run_lines

    set_threads(args.threads)
    executor = executor_settings(args)
    bench = load_benchmark(find_benchmark(args.benchmark))
    if args.param and not args.translator:
        raise ConfigError("--param: applies to --translator plugins, and none was given")
    bench = with_translators(bench, args.translator, parse_params(args.param))
    bench = with_seeds(bench, args.seeds)
    # --translator always runs its method, beside the --methods named (or alone without --methods)
    methods = tuple(args.methods) + tuple(t for t in args.translator if t not in args.methods) if args.methods else tuple(args.translator)
    if args.isolate:  # nobody else's code is imported here: the sandbox describes their translators
        from benchbias.run.isolation import isolated_registry

        registry = isolated_registry(bench, methods, args.plugin_dir)
    else:
        registry = load_registry(args.plugin_dir)
    out = args.out or Path("benchbias-runs") / bench.name
    check_results_folder(out)
    if args.submit:  # a leaderboard that cannot take the results is found now, not after every cell
        check_before_run(bench.name, bench.protocol_hash())
    options = RunOptions(
        out=out,
        device=args.device,
        methods=methods,
        data_path=args.data,
        amp=args.amp,
        tf32=args.tf32,
        override_precision=args.override_precision,
        progress=not args.no_progress,
        isolate=args.isolate,
        **executor,
    )
    results = Run(bench, registry, options).execute()
    prov = results["provenance"]
    print(
        f"\nbenchmark {bench.name}: {prov['cells_run']} cells computed now, {prov['cells_reused']} reused; "
        f"{prov['wall_time_s']:.1f} s wall on {prov['device']}; "
        f"{prov['compute_time_s']:.1f} s of training and translating behind these results"
    )
    judge = results["classifier"]
    print(
        f"judge {judge['name']} {judge['sha256'][:12]} ({'pinned' if judge['pinned'] else 'cached, not pinned'}): holdout accuracy "
        f"{judge['holdout_accuracy']:.3f} on real {bench.dataset.target}; "
        f"a benign perturbation moves its rates by at most {judge['robustness']['max_shift']:.2f}"
    )
    if judge["quality_problems"]:
        print(f"WARNING: the judge falls short of the standard: {'; '.join(judge['quality_problems'])}")
    table = ScoreTable.from_json(results["score_table"])
    for name, method in results["methods"].items():
        kind = "paired" if method["paired"] else "unpaired"
        print(f"\n{name} ({kind}); brackets: 95% bootstrap interval over holdout slices\n{cell_rows(method, table, COMPACT).text()}")
        for line in filter(None, [loss_summary(method), *(f"WARNING: {name}: {w}" for w in method.get("warnings", []))]):
            print(line)
    more = more_rows_of_results(results)
    print(f"\n{ranked_rows_of_results(results).text()}" + (f"\n\nmore scores over the sweep ({MORE_NOTE}):\n{more.text()}" if more else ""))
    if results.get("ranking_2"):
        print(f"\n{second_judge_sentence(results)}")
    print(f"\nresults: {out / 'results.json'}\nreport:  {out / 'report.html'}")
    claims = run_lines(results)
    if claims:
        print("\n" + "\n".join(claims))
    if args.submit:
        path, done = submit(results, str(out / "results.json"), replace=args.replace)
        print(f"leaderboard {path} and {path.with_suffix('.md')}: {'; '.join(done)}")
    return 0


def cmd_selftest(args: argparse.Namespace) -> int:
    from benchbias.foundation.benchmark_files import find_benchmark, load_benchmark
    from benchbias.foundation.registry import load_registry
    from benchbias.report.tables import ranked_rows_of_results
    from benchbias.run import Run, RunOptions, selftest
    from benchbias.scoring.claims_section import run_lines

    set_threads(args.threads)
    bench = with_seeds(load_benchmark(find_benchmark(args.benchmark)), args.seeds)
    registry = load_registry(args.plugin_dir)
    references = [m.name for m in bench.methods]
    bench = selftest.with_canaries(bench, registry)
    out = args.out or Path("benchbias-runs") / f"{bench.name}-selftest"
    check_results_folder(out)
    options = RunOptions(out=out, device=args.device, data_path=args.data, progress=not args.no_progress, **executor_settings(args))
    results = Run(bench, registry, options).execute()
    judge = results["classifier"]["sha256"][:12]
    print(f"\n{ranked_rows_of_results(results).text()}\n\nselftest of {bench.name} (judge {judge}; reference methods: {', '.join(references)}):")
    verdicts = selftest.properties(results, references)
    for verdict in verdicts:
        print(verdict.line())
    missed = [v for v in verdicts if not v.passed]
    print(
        f"\n{len(verdicts) - len(missed)} of {len(verdicts)} claims hold: every canary caught"
        if not missed
        else f"\n{len(verdicts) - len(missed)} of {len(verdicts)} claims hold"
    )
    # A benchmark that carries the paper's claims must also reproduce its paper: with the three
    # baselines in the run, a claim that fails fails the selftest too.
    claims = run_lines(results)
    if claims:
        print("\n".join(claims))
    unreproduced = "paper_claims" in results and results["paper_claims"]["holding"] < len(results["paper_claims"]["claims"])
    print(f"report: {out / 'report.html'}")
    return 1 if missed or unreproduced else 0


def cmd_plan(args: argparse.Namespace) -> int:
    import torch

    from benchbias.data.protocol import ProtocolError, hold_out, split_subjects
    from benchbias.data.sources import benchmark_data
    from benchbias.foundation.benchmark_files import find_benchmark, load_benchmark
    from benchbias.foundation.registry import load_registry
    from benchbias.run import plan
    from benchbias.run.executors import default_jobs
    from benchbias.run.inputs import plugins_of
    from benchbias.run.keys import programs
    from benchbias.run.options import apply_tf32, select_device

    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads {args.threads}: must be a positive number of CPU threads")
    if args.measure_steps < 0:
        raise ConfigError(f"--measure-steps {args.measure_steps}: must be 0 or more")
    jobs = jobs_setting(args.jobs)
    bench = load_benchmark(find_benchmark(args.benchmark))
    registry = load_registry(args.plugin_dir)
    device = select_device(args.device)
    chosen = plugins_of(bench, registry, tuple(args.methods))
    translators = {m.name: chosen.translators[m.name][0] for m in chosen.methods}
    data = benchmark_data(bench.dataset, bench.slices, registry, args.data, not args.no_progress)
    slices = data.slices
    try:
        split = split_subjects(slices, bench.split, bench.domains)
    except ProtocolError:  # the holdout set cannot be drawn: say what the data holds, then why
        print(f"data: {data.root} (layout {data.layout})")
        print("\n".join(plan.split_only(bench, slices.case_id, slices.is_tumor, hold_out(slices.case_id, bench.split)[0])), flush=True)
        raise
    unpaired = any(not t.paired for t in translators.values())
    sizes = {name: [len(chunk) for chunk in programs(bench, t)] * len(bench.seeds) for name, t in translators.items()}
    jobs = jobs or default_jobs(device.type, sum(sum(s) for s in sizes.values()))
    workers = max(1, min(jobs, sum(len(s) for s in sizes.values())))
    # The run's threads per cell: one per worker process, or this process's with one job.
    threads = args.threads or (torch.get_num_threads() if jobs == 1 else 1)
    names = tuple(m.name for m in chosen.methods)
    lines, infeasible = plan.describe(bench, split, slices.case_id, slices.is_tumor, unpaired, names, data.dataset_max, data.half_not_as_stored)
    print(f"data: {data.root} (layout {data.layout})")
    print("\n".join(lines), flush=True)  # what needs no measuring comes first
    if not args.measure_steps:
        print("\ncompute: not measured (--measure-steps N times N training steps of each method here)")
    elif infeasible is None:
        amp = bench.precision.amp is not False
        apply_tf32(device, bench.precision.tf32)
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        costs = []
        try:
            for method in chosen.methods:
                t = translators[method.name]
                flops = plan.measure_flops(t, bench.slices.image_size, device, amp)
                seconds = plan.measure_step(t, bench.slices.image_size, device, args.measure_steps, together=max(sizes[method.name]), amp=amp)
                costs.append(plan.Cost(method.name, flops, seconds, method.steps, tuple(sizes[method.name]), max(sizes[method.name])))
        finally:
            torch.set_num_threads(previous)
        if device.type == "cpu":
            where = f"cpu, {threads} torch thread{'s' if threads > 1 else ''} per worker, float32"
        else:
            where = f"{torch.cuda.get_device_name(device)}, {plan.precision_words(bench)}"
        print("\n" + "\n".join(plan.cost_lines(costs, workers, where)))
    plan.check_feasible(infeasible)
    return 0
