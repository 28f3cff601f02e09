"""The ``benchbias`` command line."""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from benchbias import __version__
from benchbias.errors import BenchbiasError
from benchbias.jsonio import FULL_DISK, OutOfSpace

DEFAULT_BENCHMARK = "synthetic-quick"
EXIT_BAD_INPUT = 2


def _plugin_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--plugin-dir", action="append", type=Path, default=[], metavar="DIR",
        help="extra folder of plugin files (repeatable; also $BENCHBIAS_PLUGIN_DIRS)",
    )


def known_benchmarks() -> str:
    """The benchmark names ``run`` finds, each with the first sentence of its description."""
    import textwrap

    import yaml

    from benchbias.config import benchmark_dirs

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


def _executor_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jobs", type=int, metavar="N",
        help="cells at once, each in a worker process with --threads torch threads (default: $BENCHBIAS_JOBS, else one job per CPU core, --cells-per-gpu on CUDA); 1 runs them in this process",
    )
    parser.add_argument(
        "--threads", type=int,
        help="CPU threads for torch: per worker process (default 1), or of this process with --jobs 1 (default: torch's choice)",
    )
    parser.add_argument("--executor", choices=("local", "ray"), default="local", help='where cells run: local processes, or Ray tasks (pip install "benchbias[ray]")')
    parser.add_argument("--address", metavar="ADDR", help="with --executor ray: the cluster's address (default: start Ray on this machine)")
    parser.add_argument(
        "--cells-per-gpu", type=int, default=1, metavar="N",
        help="on CUDA, cells that share one GPU at once: Ray tasks ask for 1/N of a GPU, local runs default to N workers (default 1)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchbias", description="Do medical image translators hallucinate or erase disease?")
    parser.add_argument("--version", action="version", version=f"benchbias {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run", help="run a benchmark (default: synthetic-quick)", epilog=known_benchmarks(), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    run.add_argument("benchmark", nargs="?", default=DEFAULT_BENCHMARK, help="benchmark name or YAML path")
    run.add_argument("--methods", nargs="+", default=[], metavar="NAME", help="run only these methods of the benchmark")
    run.add_argument("--out", type=Path, help="results folder (default: benchbias-runs/<benchmark>); a rerun resumes it")
    run.add_argument("--data", metavar="PATH", help="data folder, overriding dataset.path")
    run.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1, ...")
    _executor_options(run)
    run.add_argument("--no-amp", action="store_true", help="disable bfloat16 autocast on CUDA")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument(
        "--translator", action="append", default=[], metavar="PLUGIN",
        help="also run this translator plugin as a method (repeatable); without --methods only these run",
    )
    run.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE",
        help="a parameter of the --translator plugins (repeatable; VALUE is read as YAML, e.g. filters=8)",
    )
    run.add_argument(
        "--seeds", type=int, nargs="+", metavar="N",
        help="translator seeds (replicates) instead of the benchmark's; the protocol hash does not change",
    )
    run.add_argument("--submit", action="store_true", help="add the results to leaderboards/<benchmark>.json/.md")
    run.add_argument("--replace", action="store_true", help="with --submit: overwrite entries of the same method and version")
    _plugin_dir_option(run)

    selftest = sub.add_parser("selftest", help="run the canary translators on a benchmark and check that its verdict catches each (exit 1 if not)")
    selftest.add_argument("benchmark", nargs="?", default=DEFAULT_BENCHMARK, help="benchmark name or YAML path")
    selftest.add_argument("--out", type=Path, help="results folder (default: benchbias-runs/<benchmark>-selftest); a rerun resumes it")
    selftest.add_argument("--data", metavar="PATH", help="data folder, overriding dataset.path")
    selftest.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1, ...")
    _executor_options(selftest)
    selftest.add_argument("--seeds", type=int, nargs="+", metavar="N", help="translator seeds instead of the benchmark's")
    selftest.add_argument("--no-progress", action="store_true", help="no progress bars")
    _plugin_dir_option(selftest)

    plan = sub.add_parser("plan", help="before a long run: the split, every fraction's domains and feasibility, cells, and a compute estimate")
    plan.add_argument("benchmark", nargs="?", default=DEFAULT_BENCHMARK, help="benchmark name or YAML path")
    plan.add_argument("--data", metavar="PATH", help="data folder, overriding dataset.path")
    plan.add_argument("--device", default="auto", help="where to measure the time per step: auto, cpu, cuda, ...")
    plan.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    plan.add_argument("--measure-steps", type=int, default=2, metavar="N", help="training steps timed per method (0: no compute estimate)")
    plan.add_argument("--no-progress", action="store_true", help="no progress bars")
    _plugin_dir_option(plan)

    plugins = sub.add_parser("plugins", help="list translators, classifiers and data layouts with their origin")
    _plugin_dir_option(plugins)

    data = sub.add_parser("data", help="data utilities").add_subparsers(dest="data_command", required=True)
    synth = data.add_parser("synth", help="write a seeded synthetic data set in the BraTS 2018-21 layout")
    synth.add_argument("out", type=Path)
    synth.add_argument("--subjects", type=int, default=60)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--shape", type=int, nargs=3, default=[64, 64, 40], metavar=("X", "Y", "Z"))
    from benchbias.prepare import add_arguments as prepare_arguments

    prepare_arguments(data.add_parser("prepare", help="read a data folder once through MONAI into the prepared-slice cache"))

    board = sub.add_parser("leaderboard", help="leaderboards").add_subparsers(dest="board_command", required=True)
    show = board.add_parser("show", help="print a benchmark's ranked leaderboard")
    show.add_argument("benchmark", nargs="?", default=DEFAULT_BENCHMARK, help="benchmark name or leaderboard JSON path")
    show.add_argument("--markdown", action="store_true", help="print the whole Markdown page instead of the table")
    submit = board.add_parser("submit", help="validate a results.json and add its methods to the benchmark's leaderboard")
    submit.add_argument("results", type=Path, help="a results.json written by benchbias run")
    submit.add_argument("--replace", action="store_true", help="overwrite entries of the same method and version")
    submit.add_argument("--methods", nargs="+", default=[], metavar="NAME", help="submit only these methods")
    render = board.add_parser("render", help="regenerate <benchmark>.md and .png from its validated JSON")
    render.add_argument("benchmark", nargs="?", default=DEFAULT_BENCHMARK, help="benchmark name or leaderboard JSON path")
    validate = board.add_parser("validate", help="validate leaderboard files; check that each .md matches its .json and the .png exists")
    validate.add_argument("files", nargs="*", type=Path, help="leaderboard JSON files (default: every one in the leaderboard folder)")

    claims = sub.add_parser("claims", help="check the paper's Figure 2 claims on a results.json, run folder or leaderboard (exit 1 if one fails)")
    claims.add_argument("path", type=Path, help="a results.json, a run folder or a leaderboard JSON file")

    compare = sub.add_parser("compare", help="per-fraction and summary differences between two results/leaderboard files")
    compare.add_argument("a", type=Path)
    compare.add_argument("b", type=Path)

    check = sub.add_parser("check", help="exit 1 when a method scored worse than its leaderboard entry beyond tolerance")
    check.add_argument("results", type=Path, help="a results.json (or leaderboard) to check")
    check.add_argument("--against", type=Path, required=True, metavar="LEADERBOARD", help="e.g. leaderboards/synthetic-quick.json")
    check.add_argument("--method", action="append", default=[], metavar="NAME", help="check only this method (repeatable)")
    check.add_argument(
        "--tolerance", action="append", default=[], metavar="SCORE=VALUE",
        help="allowed worsening of a sweep score, absolute (hallucination=0.1) or relative to the reference (mae=5%%); repeatable",
    )

    judge = sub.add_parser("judge", help="the benchmark's pinned judge (tumor classifier)").add_subparsers(dest="judge_command", required=True)
    judge_train = judge.add_parser("train", help="train the benchmark's judge and pin it as judges/<benchmark>.pt beside its YAML file")
    judge_train.add_argument("benchmark", nargs="?", default=DEFAULT_BENCHMARK, help="benchmark name or YAML path")
    judge_train.add_argument("--data", metavar="PATH", help="data folder, overriding dataset.path")
    judge_train.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    judge_train.add_argument("--device", default="cpu", help="cpu (default), cuda, ...")
    judge_train.add_argument("--no-progress", action="store_true", help="no progress bar")
    judge_train.add_argument("--only", choices=("classifier", "segmenter", "second_judge"), action="append", default=[],
                             help="train only this judge (repeatable; default: every judge the benchmark has)")
    _plugin_dir_option(judge_train)
    judge_show = judge.add_parser("show", help="print the pinned judge's record: sha256, accuracy, robustness table")
    judge_show.add_argument("benchmark", nargs="?", default=DEFAULT_BENCHMARK, help="benchmark name or YAML path")

    schema = sub.add_parser("schema", help="print the JSON Schema of results or leaderboard files")
    schema.add_argument("kind", choices=["results", "leaderboard"])
    return parser


def parse_params(items: list[str]) -> dict:
    import yaml

    from benchbias.config import ConfigError

    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--param {item}: expected KEY=VALUE")
        try:
            params[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"--param {item}: VALUE is not valid YAML") from None
    return params


def cmd_run(args: argparse.Namespace) -> int:
    from benchbias import leaderboard, paper_claims
    from benchbias.config import ConfigError, find_benchmark, load_benchmark, with_translators
    from benchbias.metrics import ScoreTable
    from benchbias.plugins import load_registry
    from benchbias.runner import Run, RunOptions
    from benchbias.tables import COMPACT, MORE_NOTE, cell_rows, more_rows_of_results, ranked_rows_of_results, second_judge_sentence

    set_threads(args.threads)
    executor = executor_settings(args)
    bench = load_benchmark(find_benchmark(args.benchmark))
    if args.param and not args.translator:
        raise ConfigError("--param: applies to --translator plugins, and none was given")
    bench = with_translators(bench, args.translator, parse_params(args.param))
    bench = with_seeds(bench, args.seeds)
    methods = tuple(args.methods) or tuple(args.translator)
    registry = load_registry(args.plugin_dir)
    out = args.out or Path("benchbias-runs") / bench.name
    check_results_folder(out)
    run = Run(
        bench,
        registry,
        RunOptions(
            out=out, device=args.device, methods=methods, data_path=args.data, amp=not args.no_amp, progress=not args.no_progress,
            **executor,
        ),
    )
    results = run.execute()
    prov = results["provenance"]
    print(
        f"\nbenchmark {bench.name}: {prov['cells_run']} cells computed now, {prov['cells_reused']} reused; {prov['wall_time_s']:.1f} s wall on {prov['device']}; "
        f"{prov['compute_time_s']:.1f} s of training and translating behind these results"
    )
    judge = results["classifier"]
    print(
        f"judge {judge['name']} {judge['sha256'][:12]} ({'pinned' if judge['pinned'] else 'cached, not pinned'}): holdout accuracy "
        f"{judge['holdout_accuracy']:.3f} on real {bench.dataset.target}; a benign perturbation moves its rates by at most {judge['robustness']['max_shift']:.2f}"
    )
    if judge["quality_problems"]:
        print(f"WARNING: the judge falls short of the standard: {'; '.join(judge['quality_problems'])}")
    table = ScoreTable.from_json(results["score_table"])
    for name, method in results["methods"].items():
        print(f"\n{name} ({'paired' if method['paired'] else 'unpaired'}); brackets: 95% bootstrap interval over holdout slices\n{cell_rows(method, table, COMPACT).text()}")
    more = more_rows_of_results(results)
    print(f"\n{ranked_rows_of_results(results).text()}" + (f"\n\nmore scores over the sweep ({MORE_NOTE}):\n{more.text()}" if more else ""))
    if results.get("ranking_2"):
        print(f"\n{second_judge_sentence(results)}")
    print(f"\nresults: {out / 'results.json'}\nreport:  {out / 'report.html'}")
    claims = paper_claims.run_lines(results)
    if claims:
        print("\n" + "\n".join(claims))
    if args.submit:
        path, done = leaderboard.submit(results, str(out / "results.json"), replace=args.replace)
        print(f"leaderboard {path} and {path.with_suffix('.md')}: {'; '.join(done)}")
    return 0


def cmd_selftest(args: argparse.Namespace) -> int:
    from benchbias import paper_claims, selftest
    from benchbias.config import find_benchmark, load_benchmark
    from benchbias.plugins import load_registry
    from benchbias.runner import Run, RunOptions
    from benchbias.tables import ranked_rows_of_results

    set_threads(args.threads)
    bench = with_seeds(load_benchmark(find_benchmark(args.benchmark)), args.seeds)
    registry = load_registry(args.plugin_dir)
    references = [m.name for m in bench.methods]
    bench = selftest.with_canaries(bench, registry)
    out = args.out or Path("benchbias-runs") / f"{bench.name}-selftest"
    check_results_folder(out)
    options = RunOptions(out=out, device=args.device, data_path=args.data, progress=not args.no_progress, **executor_settings(args))
    results = Run(bench, registry, options).execute()
    print(f"\n{ranked_rows_of_results(results).text()}\n\nselftest of {bench.name} (judge {results['classifier']['sha256'][:12]}; reference methods: {', '.join(references)}):")
    verdicts = selftest.properties(results, references)
    for verdict in verdicts:
        print(verdict.line())
    missed = [v for v in verdicts if not v.passed]
    print(f"\n{len(verdicts) - len(missed)} of {len(verdicts)} claims hold: every canary caught" if not missed else f"\n{len(verdicts) - len(missed)} of {len(verdicts)} claims hold")
    # A benchmark that carries the paper's claims must also reproduce its paper: with the three
    # baselines in the run, a claim that fails fails the selftest too.
    claims = paper_claims.run_lines(results)
    if claims:
        print("\n".join(claims))
    unreproduced = "paper_claims" in results and results["paper_claims"]["holding"] < len(results["paper_claims"]["claims"])
    print(f"report: {out / 'report.html'}")
    return 1 if missed or unreproduced else 0


def cmd_plan(args: argparse.Namespace) -> int:
    from benchbias import plan
    from benchbias.config import ConfigError, find_benchmark, load_benchmark
    from benchbias.data.sources import prepare_dataset
    from benchbias.plugins import load_registry
    from benchbias.protocol import split_subjects
    from benchbias.runner import instantiate, select_device

    set_threads(args.threads)
    if args.measure_steps < 0:
        raise ConfigError(f"--measure-steps {args.measure_steps}: must be 0 or more")
    bench = load_benchmark(find_benchmark(args.benchmark))
    registry = load_registry(args.plugin_dir)
    device = select_device(args.device)
    translators = {m.name: instantiate(registry, "translator", m, f"methods.{m.name}", bench.source_file)[0] for m in bench.methods}
    data = prepare_dataset(bench.dataset, bench.slices, registry, args.data, not args.no_progress)
    slices = data.slices
    split = split_subjects(slices, bench.split, bench.domains)
    unpaired = any(not t.paired for t in translators.values())
    costs = []
    if args.measure_steps:
        cells = len(bench.domains.target_fractions) * len(bench.seeds)
        for method in bench.methods:
            flops, seconds = plan.measure_step(translators[method.name], bench.slices.image_size, device, args.measure_steps)
            costs.append(plan.Cost(method.name, flops, seconds, method.steps, cells))
    import torch

    where = f"{device.type}, {torch.get_num_threads()} threads" if device.type == "cpu" else torch.cuda.get_device_name(device)
    lines, infeasible = plan.describe(bench, split, slices.case_id, slices.is_tumor, unpaired, costs, where)
    print(f"data: {data.root} (layout {data.layout})")
    print("\n".join(lines))
    plan.check_feasible(infeasible)
    return 0


def with_seeds(bench, seeds: list[int] | None):
    from benchbias.config import ConfigError

    if not seeds:
        return bench
    if len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ConfigError(f"--seeds {' '.join(map(str, seeds))}: must be distinct non-negative integers")
    return dataclasses.replace(bench, seeds=tuple(seeds))


def cmd_plugins(args: argparse.Namespace) -> int:
    from benchbias.plugins import load_registry

    registry = load_registry(args.plugin_dir)
    for kind in ("translator", "classifier", "dataset"):
        print(f"{kind}s:")
        for name in registry.names(kind):
            entry = registry.get(kind, name)
            training = ("paired" if entry.cls.paired else "unpaired") + "  " if kind == "translator" else ""
            print(f"  {name:<16} {training}{entry.origin}")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from benchbias.data.synthetic import SynthSpec, write_dataset

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


def check_results_folder(out: Path) -> None:
    from benchbias.config import ConfigError

    problem = folder_problem(out)
    if problem:
        raise ConfigError(f"--out {out}: {problem}")


def folder_problem(path: Path) -> str | None:
    """Why ``path`` cannot be (or become) a folder: it, or a folder above it, is a file."""
    for part in (path, *path.parents):
        if part.exists():
            if part.is_dir():
                return None
            return "is a file, not a folder" if part == path else f"{part} is a file, so it cannot hold a folder"
    return None


def cmd_prepare(args: argparse.Namespace) -> int:
    from benchbias.prepare import command

    return command(args)


def cmd_leaderboard_show(args: argparse.Namespace) -> int:
    from benchbias import leaderboard
    from benchbias.validation import load_leaderboard

    path = leaderboard.leaderboard_path(args.benchmark)
    if not path.is_file():
        print(f"benchbias: error: no leaderboard {path}", file=sys.stderr)
        return EXIT_BAD_INPUT
    board = load_leaderboard(path)
    if args.markdown:
        print(leaderboard.render(board), end="")
    else:
        print(f"{board['benchmark']}: {len(board['entries'])} entries; {board['ranking_rule']}\n")
        print(leaderboard.ranked_rows(board).text())
        if any(len(e["seeds"]) > 1 for e in board["entries"]):
            print(f"\n{leaderboard.SEEDS_NOTE}")
    return 0


def cmd_leaderboard_submit(args: argparse.Namespace) -> int:
    from benchbias import leaderboard
    from benchbias.validation import load_results

    results = load_results(args.results)
    path, done = leaderboard.submit(results, str(args.results), replace=args.replace, methods=tuple(args.methods))
    print(f"{path}: {'; '.join(done)}; {path.with_suffix('.md')} regenerated")
    return 0


def cmd_leaderboard_render(args: argparse.Namespace) -> int:
    from benchbias import leaderboard
    from benchbias.validation import load_leaderboard

    path = leaderboard.leaderboard_path(args.benchmark)
    leaderboard.write(load_leaderboard(path), path)
    print(f"{path.with_suffix('.md')} and {path.with_suffix('.png').name} regenerated from {path.name}")
    return 0


def cmd_leaderboard_validate(args: argparse.Namespace) -> int:
    from benchbias import leaderboard
    from benchbias.validation import InvalidFile, load_leaderboard

    files = args.files or sorted(leaderboard.leaderboard_dir().glob("*.json"))
    if not files:
        print(f"benchbias: error: no leaderboard files in {leaderboard.leaderboard_dir()}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for path in files:
        board = load_leaderboard(path)
        markdown, figure = path.with_suffix(".md"), path.with_suffix(".png")
        if not markdown.is_file() or markdown.read_text() != leaderboard.render(board):
            raise InvalidFile(str(markdown), "", f"is not the rendering of {path.name} (edited by hand, or stale); run: benchbias leaderboard render {path}")
        if not figure.is_file() or not figure.read_bytes().startswith(b"\x89PNG"):
            raise InvalidFile(str(figure), "", f"is missing or not a PNG; run: benchbias leaderboard render {path}")
        print(f"{path}: valid, {len(board['entries'])} entries; {markdown.name} matches, {figure.name} present")
    return 0


def cmd_claims(args: argparse.Namespace) -> int:
    from benchbias.paper_claims import command

    return command(args.path)


def cmd_compare(args: argparse.Namespace) -> int:
    from benchbias.compare import compare, load_scored

    print(compare(load_scored(args.a), load_scored(args.b)))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from benchbias.compare import check, load_scored, parse_tolerances
    from benchbias.tables import text_table

    reference = load_scored(args.against)
    tolerances = parse_tolerances(args.tolerance, reference.table)
    result = check(load_scored(args.results), reference, tolerances, args.method or None)
    print(text_table(result.rows))
    if result.passed:
        print(f"\ncheck passed: no score got worse beyond its tolerance against {args.against}")
        return 0
    print(f"\ncheck FAILED: worse than {args.against}: {', '.join(result.worse)}")
    return 1


def robustness_lines(info: dict) -> list[str]:
    """The judge's robustness table as text: tumor-called rates on the real holdout, by input class."""
    from benchbias.tables import text_table

    table = info["robustness"]
    rows = [["real target holdout", "healthy inputs called tumor", "tumor inputs called tumor", "largest change"]]
    base = table["unperturbed"]
    rows.append(["unperturbed", f"{base['healthy_inputs']:.2f}", f"{base['tumor_inputs']:.2f}", ""])
    for row in table["perturbed"]:
        rows.append([row["perturbation"], f"{row['healthy_inputs']:.2f}", f"{row['tumor_inputs']:.2f}", f"{row['max_shift']:.2f}"])
    return text_table(rows).splitlines()


def judge_summary(info: dict, role: str = "classifier") -> list[str]:
    from benchbias import judge

    if role == "segmenter":
        from benchbias.segmenter import quality_problems

        problems = quality_problems(info)
        return [
            f"segmenter {info['name']} sha256 {info['sha256']}",
            f"holdout Dice on tumor slices {fmt_or_na(info['holdout_dice'])}; healthy holdout slices with any outlined pixel "
            f"{fmt_or_na(info['holdout_false_positive_share'])}; trained {info['steps']} steps on {info['train_slices']} real slices in {info['train_time_s']:.0f} s",
            "meets the standard" if not problems else "WARNING: this segmenter falls short: " + "; ".join(problems),
        ]
    problems = judge.quality_problems(info)
    lines = [
        f"{'judge' if role == 'classifier' else 'second judge'} {info['name']} sha256 {info['sha256']}",
        f"holdout accuracy {info['holdout_accuracy']:.3f} (sensitivity {info['holdout_sensitivity']:.3f}, specificity {info['holdout_specificity']:.3f}); "
        f"trained {info['steps']} steps on {info['train_slices']} real slices in {info['train_time_s']:.0f} s",
        *robustness_lines(info),
        "meets the standard (accuracy >= 0.93, every benign perturbation moves each rate by <= 0.05)" if not problems
        else "WARNING: this judge falls short: " + "; ".join(problems),
    ]
    return lines


def fmt_or_na(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def cmd_judge_train(args: argparse.Namespace) -> int:
    import torch

    from benchbias import judge
    from benchbias.config import find_benchmark, load_benchmark
    from benchbias.jsonio import read_json
    from benchbias.plugins import load_registry
    from benchbias.runner import Run, RunOptions

    set_threads(args.threads)
    path = find_benchmark(args.benchmark)
    bench = load_benchmark(path)
    run = Run(bench, load_registry(args.plugin_dir), RunOptions(out=Path("benchbias-runs") / bench.name, device=args.device, data_path=args.data, progress=not args.no_progress))
    run.prepare()
    for role, j in run.judges.items():
        if args.only and role not in args.only:
            continue
        blob, info = run.train_judge(role)
        files = j.pinned_files(bench)
        old = read_json(files.info) if files.info.is_file() else None
        judge.store(files, blob, info)
        print("\n".join(judge_summary(info, role)))
        print(f"pinned: {files.weights} ({len(blob) / 1024:.0f} KB) and {files.info.name}; torch {torch.__version__}, {torch.get_num_threads()} threads")
        print("no such judge was pinned for this benchmark before" if old is None else "changed: " + "; ".join(judge.differences(old, info)))
        print()
    return 0


def cmd_judge_show(args: argparse.Namespace) -> int:
    from benchbias import judge
    from benchbias.config import find_benchmark, load_benchmark
    from benchbias.jsonio import read_json

    path = find_benchmark(args.benchmark)
    files = judge.JudgeFiles.beside(path, load_benchmark(path).name)
    if not files.exist():
        print(f"benchbias: error: {files.weights}: no pinned judge for {path}; create it with: benchbias judge train {path}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print("\n".join(judge_summary(read_json(files.info))))
    return 0


JOBS_ENV = "BENCHBIAS_JOBS"


def executor_settings(args: argparse.Namespace) -> dict:
    from benchbias.config import ConfigError

    jobs = args.jobs
    if jobs is None and os.environ.get(JOBS_ENV):  # a default for a machine or a CI job
        try:
            jobs = int(os.environ[JOBS_ENV])
        except ValueError:
            raise ConfigError(f"{JOBS_ENV}={os.environ[JOBS_ENV]}: must be a positive number of worker processes") from None
        if jobs < 1:
            raise ConfigError(f"{JOBS_ENV}={jobs}: must be a positive number of worker processes")
    if jobs is not None and jobs < 1:
        raise ConfigError(f"--jobs {jobs}: must be a positive number of worker processes")
    if args.address and args.executor != "ray":
        raise ConfigError("--address: applies to --executor ray")
    if args.cells_per_gpu < 1:
        raise ConfigError(f"--cells-per-gpu {args.cells_per_gpu}: must be a positive number of cells")
    if args.cells_per_gpu > 1 and args.device == "cpu":
        raise ConfigError("--cells-per-gpu: applies to CUDA runs (--device cuda or auto on a machine with a GPU)")
    if args.executor == "ray":
        from benchbias.executors import import_ray

        import_ray()  # one clear line now, not after the data is prepared
    return {
        "jobs": jobs, "executor": args.executor, "address": args.address, "threads": args.threads, "cells_per_gpu": args.cells_per_gpu,
        "plugin_dirs": tuple(args.plugin_dir),
    }


def set_threads(threads: int | None) -> None:
    from benchbias.config import ConfigError

    if threads is None:
        return
    if threads < 1:
        raise ConfigError(f"--threads {threads}: must be a positive number of CPU threads")
    import torch

    torch.set_num_threads(threads)


def cmd_schema(args: argparse.Namespace) -> int:
    from benchbias.jsonio import dumps
    from benchbias.schemas import SCHEMAS

    print(dumps(SCHEMAS[args.kind]), end="")
    return 0


def one_line(message: str) -> str:
    """The message with line breaks and other control characters escaped (a key or value quoted
    from a bad file may hold them), so that an error is always one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


def after_full_disk(args: argparse.Namespace) -> str:
    if args.command in ("run", "selftest"):
        return "finished cells are kept; free some space and rerun the same command to resume"
    return "files are replaced atomically, so the old ones are intact; free some space and try again"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {"run": cmd_run, "plan": cmd_plan, "selftest": cmd_selftest, "plugins": cmd_plugins, "claims": cmd_claims, "compare": cmd_compare, "check": cmd_check, "schema": cmd_schema}
    if args.command == "data":
        handler = {"synth": cmd_synth, "prepare": cmd_prepare}[args.data_command]
    elif args.command == "judge":
        handler = {"train": cmd_judge_train, "show": cmd_judge_show}[args.judge_command]
    elif args.command == "leaderboard":
        handler = {"show": cmd_leaderboard_show, "submit": cmd_leaderboard_submit, "validate": cmd_leaderboard_validate, "render": cmd_leaderboard_render}[args.board_command]
    else:
        handler = handlers[args.command]
    try:
        return handler(args)
    except OutOfSpace as exc:
        print(f"benchbias: error: {exc.strerror}; {after_full_disk(args)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BenchbiasError as exc:
        print(f"benchbias: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        if exc.errno not in FULL_DISK:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"benchbias: error: {where}cannot write: {os.strerror(exc.errno).lower()}; {after_full_disk(args)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("benchbias: interrupted; finished cells are kept and a rerun resumes", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
