"""``benchbias judge train|show|stress``: a benchmark's pinned judges."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchbias.cli.common import EXIT_BAD_INPUT, benchmark_argument, fmt_or_na, key_values, plugin_dir_option, set_threads

if TYPE_CHECKING:
    from benchbias.foundation.config import Benchmark
    from benchbias.foundation.registry import Registry
    from benchbias.run.inputs import RunData


def add_parsers(sub: argparse._SubParsersAction) -> None:
    judge = sub.add_parser("judge", help="the benchmark's pinned judge (tumor classifier)").add_subparsers(dest="judge_command", required=True)
    train = judge.add_parser("train", help="train the benchmark's judge and pin it as judges/<benchmark>.pt beside its YAML file")
    benchmark_argument(train)
    train.add_argument("--data", metavar="PATH", help="data folder, overriding dataset.path")
    train.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    train.add_argument("--device", default="cpu", help="cpu (default), cuda, ...")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument(
        "--only", choices=("classifier", "segmenter", "second_judge"), action="append", default=[],
        help="train only this judge (repeatable; default: every judge the benchmark has)",
    )  # fmt: skip
    plugin_dir_option(train)
    train.set_defaults(handler=cmd_train)
    show = judge.add_parser("show", help="print the pinned judge's record: sha256, accuracy, robustness table")
    benchmark_argument(show)
    show.set_defaults(handler=cmd_show)
    stress = judge.add_parser("stress", help="the pinned judges' tumor-called rates on the real holdout under perturbations beyond their training augmentation")
    benchmark_argument(stress)
    stress.add_argument("--data", metavar="PATH", help="data folder, overriding dataset.path")
    stress.add_argument(
        "--retrain", action="store_true",
        help="train the first judge here with the benchmark's recipe (not pinned) and stress it in place of the pinned one",
    )  # fmt: skip
    stress.add_argument(
        "--judge-param", action="append", default=[], metavar="KEY=VALUE",
        help="a parameter of the retrained first judge over its recipe, or its steps (repeatable; implies --retrain; VALUE is read "
        "as YAML, e.g. adversarial_eps=0.25)",
    )  # fmt: skip
    stress.add_argument(
        "--second-judge-param", action="append", default=[], metavar="KEY=VALUE",
        help="a parameter of the second judge, or its steps, retrained here over its recipe instead of the pinned one "
        "(repeatable; e.g. adversarial_eps=0.05)",
    )  # fmt: skip
    stress.add_argument(
        "--attack-eps", type=float, action="append", metavar="E",
        help="the gradient attack's budget: at most E per pixel on [-1, 1] (repeatable: one table per budget; default 0.25)",
    )  # fmt: skip
    stress.add_argument(
        "--private", action="store_true",
        help="maintainers: attack the private holdout of $BENCHBIAS_HOLDOUT_SECRET instead, read also by its judges (the plain "
        "and the hardened first judge, the second judge), which nobody outside holds",
    )  # fmt: skip
    stress.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    stress.add_argument("--no-progress", action="store_true", help="no progress bar while retraining")
    plugin_dir_option(stress)
    stress.set_defaults(handler=cmd_stress)


def robustness_lines(info: dict) -> list[str]:
    """The judge's robustness table as text: tumor-called rates on the real holdout, by input class."""
    return table_lines(info["robustness"])


def table_lines(table: dict) -> list[str]:
    from benchbias.report.tables import text_table

    rows = [["real target holdout", "healthy inputs called tumor", "tumor inputs called tumor", "largest change"]]
    base = table["unperturbed"]
    rows.append(["unperturbed", f"{base['healthy_inputs']:.2f}", f"{base['tumor_inputs']:.2f}", ""])
    for row in table["perturbed"]:
        rows.append([row["perturbation"], f"{row['healthy_inputs']:.2f}", f"{row['tumor_inputs']:.2f}", f"{row['max_shift']:.2f}"])
    return text_table(rows).splitlines()


def judge_summary(info: dict, role: str = "classifier") -> list[str]:
    from benchbias.judges import pinned, segmenter

    if role == "segmenter":
        problems = segmenter.quality_problems(info)
        return [
            f"segmenter {info['name']} sha256 {info['sha256']}",
            f"holdout Dice on tumor slices {fmt_or_na(info['holdout_dice'])}; healthy holdout slices with any outlined pixel "
            f"{fmt_or_na(info['holdout_false_positive_share'])}; trained {info['steps']} steps on {info['train_slices']} real slices "
            f"in {info['train_time_s']:.0f} s",
            "meets the standard" if not problems else "WARNING: this segmenter falls short: " + "; ".join(problems),
        ]
    problems = pinned.quality_problems(info)
    return [
        f"{'judge' if role == 'classifier' else 'second judge'} {info['name']} sha256 {info['sha256']}",
        f"holdout accuracy {info['holdout_accuracy']:.3f} (sensitivity {info['holdout_sensitivity']:.3f}, specificity {info['holdout_specificity']:.3f}); "
        f"trained {info['steps']} steps on {info['train_slices']} real slices in {info['train_time_s']:.0f} s",
        *robustness_lines(info),
        "meets the standard (accuracy >= 0.93, every benign perturbation moves each rate by <= 0.05)" if not problems
        else "WARNING: this judge falls short: " + "; ".join(problems),
    ]  # fmt: skip


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from benchbias.foundation.benchmark_files import find_benchmark, load_benchmark
    from benchbias.foundation.jsonio import read_json
    from benchbias.foundation.registry import load_registry
    from benchbias.judges import pinned
    from benchbias.run.inputs import plugins_of, read_data, train_judge
    from benchbias.run.options import select_device

    set_threads(args.threads)
    path = find_benchmark(args.benchmark)
    bench = load_benchmark(path)
    registry = load_registry(args.plugin_dir)
    device = select_device(args.device)
    plugins = plugins_of(bench, registry)
    data = read_data(bench, plugins, registry, args.data, not args.no_progress)
    workdir = Path("benchbias-runs") / bench.name / "judge"
    for role, j in plugins.judges.items():
        if args.only and role not in args.only:
            continue
        blob, info = train_judge(bench, plugins, data, role, workdir, device, True, not args.no_progress)  # amp: bfloat16 autocast on CUDA, a run's default
        files = j.pinned_files(bench)
        old = read_json(files.info) if files.info.is_file() else None
        pinned.store(files, blob, info)
        print("\n".join(judge_summary(info, role)))
        print(f"pinned: {files.weights} ({len(blob) / 1024:.0f} KB) and {files.info.name}; torch {torch.__version__}, {torch.get_num_threads()} threads")
        print("no such judge was pinned for this benchmark before" if old is None else "changed: " + "; ".join(pinned.differences(old, info)))
        print()
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from benchbias.foundation.benchmark_files import find_benchmark, load_benchmark
    from benchbias.foundation.jsonio import read_json
    from benchbias.judges import pinned

    path = find_benchmark(args.benchmark)
    files = pinned.JudgeFiles.beside(path, load_benchmark(path).name)
    if not files.exist():
        print(f"benchbias: error: {files.weights}: no pinned judge for {path}; create it with: benchbias judge train {path}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print("\n".join(judge_summary(read_json(files.info))))
    return 0


def judge_params(items: list[str], option: str = "--judge-param") -> dict[str, Any]:
    """``--judge-param KEY=VALUE`` items as a dict, each VALUE read as YAML."""
    return key_values(items, option)


def with_judge_params(bench: Benchmark, registry: Registry, params: dict[str, Any], role: str = "classifier") -> Benchmark:
    """``bench`` with ``params`` over the recipe of its judge ``role`` (``classifier`` or
    ``second_judge``): the plugin's params, and ``steps``; checked (a bad one names its option)."""
    from dataclasses import replace

    from benchbias.foundation.config import ConfigError
    from benchbias.foundation.contract import ParamError

    option = "--judge-param" if role == "classifier" else "--second-judge-param"
    config = getattr(bench, role)
    if config is None:
        raise ConfigError(f"{option}: {bench.source_file} has no {role.replace('_', ' ')}")
    params = dict(params)
    steps = params.pop("steps", config.steps)  # the recipe's step budget, beside the plugin's params
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ConfigError(f"{option}: steps must be a positive integer, got {steps!r}")
    config = replace(config, params={**config.params, **params}, steps=steps)
    try:
        registry.get("classifier", config.plugin).cls(**config.params)
    except ParamError as exc:
        raise ConfigError(f"{option}: {exc}") from None
    return replace(bench, **{role: config})


def retrain_judge(retrained: Benchmark, registry: Registry, data: RunData, show_progress: bool, role: str = "classifier") -> tuple[Any, dict[str, Any]]:
    """The benchmark's judge ``role`` trained on the CPU with its recipe, unpinned: its model (weights
    loaded as stored) and its record."""
    import tempfile
    import time

    import torch

    from benchbias.run.inputs import plugins_of, train_judge

    plugins = plugins_of(retrained, registry)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="benchbias-judge-") as workdir:
        _, info = train_judge(retrained, plugins, data, role, Path(workdir), torch.device("cpu"), True, show_progress)
    print("\n".join(judge_summary(info, role)))
    print(f"retrained here, not pinned: {time.perf_counter() - start:.0f} s with {torch.get_num_threads()} threads; params {info['params']}")
    print()
    return plugins.judges[role].model, info


def cmd_stress(args: argparse.Namespace) -> int:
    from benchbias.foundation.benchmark_files import find_benchmark, load_benchmark
    from benchbias.foundation.config import ConfigError
    from benchbias.foundation.registry import load_registry
    from benchbias.judges import panel, pinned
    from benchbias.judges.robustness import attack_table, robustness_table, stress_perturbations
    from benchbias.report.tables import text_table
    from benchbias.run.inputs import plugins_of, read_data

    set_threads(args.threads)
    budgets = args.attack_eps or [0.25]
    for eps in budgets:
        if not 0.0 < eps <= 2.0:
            raise ConfigError(f"--attack-eps {eps}: must be in (0, 2] (a budget per pixel on [-1, 1])")
    if args.private:
        from benchbias.verification.private import read_secret

        read_secret()  # one line now when it is missing, not after the stress tables
    params = judge_params(args.judge_param)
    second_params = judge_params(args.second_judge_param, "--second-judge-param")
    path = find_benchmark(args.benchmark)
    bench = load_benchmark(path)
    registry = load_registry(args.plugin_dir)
    retrained = {}  # role -> the benchmark with that judge's recipe changed, for the judges trained here
    if args.retrain or params:
        retrained["classifier"] = with_judge_params(bench, registry, params)
    if second_params:
        retrained["second_judge"] = with_judge_params(bench, registry, second_params, "second_judge")
    plugins = plugins_of(bench, registry)
    data = read_data(bench, plugins, registry, args.data, False)
    classifiers, inputs = {}, {}
    for role, j in plugins.judges.items():
        if role == "segmenter":
            continue
        if role in retrained:
            model, info = retrain_judge(retrained[role], registry, data, not args.no_progress, role)
            info["name"] += " (retrained)"
        else:
            files = j.pinned_files(bench)
            if not files.exist():
                what = role.replace("_", " ")
                print(f"benchbias: error: {files.weights}: no pinned {what} for {path}; pin it with: benchbias judge train {path}", file=sys.stderr)
                return EXIT_BAD_INPUT
            model = j.model
            info = pinned.load(files, model, j.trained_for(bench), data.data.fingerprint, j.code_sha256, j.same_results_as)
        images = pinned.inputs(panel.unit_images(data.holdout.target), j.shape)
        table = robustness_table(model.predict_proba, images, data.holdout.is_tumor, perturbations=stress_perturbations())
        print(f"{'judge' if role == 'classifier' else 'second judge'} {info['name']} {info['sha256'][:12]}: perturbations beyond its training augmentation")
        print("\n".join(table_lines(table)))
        print(f"largest change {table['max_shift']:.2f}")
        print()
        if j.shape is None:
            classifiers[info["name"]], inputs[info["name"]] = model, images
    if not classifiers:
        return 0
    # The strongest informed attacker: the untranslated source, moved until the judges it holds make the
    # call the real target deserves (which the attacker is assumed to know).
    holdout, readers, where = data.holdout, {}, "the untranslated source"
    if args.private:
        holdout, readers = private_readers(bench, registry, not args.no_progress)
        where = "the private holdout's untranslated source"
    source = pinned.inputs(panel.unit_images(holdout.source))
    names = [*classifiers, *readers]
    for eps in budgets:
        rows = attack_table(classifiers, source, holdout.is_tumor, eps=eps, readers=readers)
        lines = [[f"gradient attack on {where} (40 steps, at most {eps:g} per pixel on [-1, 1])", *(f"{n}: right calls" for n in names)]]
        lines += [["no attack" if r["attacked"] == "none" else f"with {r['attacked']}'s weights", *(f"{r[n]:.2f}" for n in names)] for r in rows]
        print(text_table(lines))
        print()
    return 0


def private_readers(bench: Benchmark, registry: Registry, show_progress: bool) -> tuple[Any, dict[str, Any]]:
    """The private holdout of ``$BENCHBIAS_HOLDOUT_SECRET`` and its judges, as ``leaderboard verify``
    resolves them (cached for the season, else trained here): the hardened first judge that verification
    uses, the same recipe plainly trained (the judge it would be without hardening) and the second judge."""
    import torch

    from benchbias.data.sources import cache_dir
    from benchbias.run.inputs import plugins_of, read_data, resolve_judges
    from benchbias.verification.private import hardened_first_judge, private_benchmark, read_secret, season

    secret = read_secret()
    plain = private_benchmark(bench, secret)
    work = cache_dir() / "private" / season(secret) / "work" / "judge"
    readers, holdout = {}, None
    for label, private in (("plain", plain), ("hardened", hardened_first_judge(plain, registry))):
        plugins = plugins_of(private, registry)
        data = read_data(private, plugins, registry, None, show_progress)
        resolve_judges(private, plugins, data, work, torch.device("cpu"), False, show_progress)
        holdout = data.holdout
        first = plugins.judges["classifier"]
        readers[f"private {first.config.name} ({label})"] = first.model
        second = plugins.judges.get("second_judge")
        if label == "plain" and second is not None and second.shape is None:
            readers[f"private {second.config.name}"] = second.model
    return holdout, readers
