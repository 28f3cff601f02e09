"""What a run is asked to do (:class:`RunOptions`), on which device, with which plugins.

Every plugin and parameter of a benchmark is checked here (:func:`instantiate`), before any data is
read: a typo in a benchmark file is one line naming the file and field, not a failure an hour in.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from benchbias.foundation.config import Benchmark, ConfigError, ModelConfig
from benchbias.foundation.contract import ParamError
from benchbias.foundation.registry import PluginError, Registered, Registry


@dataclass
class RunOptions:
    out: Path
    device: str = "auto"
    methods: tuple[str, ...] = ()
    data_path: str | None = None
    amp: bool | None = None  # bfloat16 autocast on CUDA; None: as the benchmark pins it, else on
    tf32: bool | None = None  # TF32 on CUDA; None: as the benchmark pins it, else torch's defaults
    override_precision: bool = False  # run at settings other than the benchmark pins (recorded)
    progress: bool = True
    plugin_dirs: tuple[Path, ...] = field(default_factory=tuple)
    jobs: int | None = 1  # worker processes for cells; 1: in this process; None: executors.default_jobs (the CLI's default)
    executor: str = "local"  # or "ray"
    address: str | None = None  # the Ray cluster's
    threads: int | None = None  # torch threads per worker process (default 1)
    cells_per_gpu: int = 1  # on CUDA, cells sharing one GPU at once (local workers, or fractional Ray GPUs)
    isolate: bool = False  # translators' fit and translate in the OS sandbox (benchbias.sandbox)


@dataclass(frozen=True)
class Precision:
    """The arithmetic of a run's CUDA work: autocast, TF32 (None: torch's defaults), and which of a
    benchmark's pinned settings the run overrides."""

    amp: bool
    tf32: bool | None
    overridden: tuple[str, ...] = ()


def resolve_precision(bench: Benchmark, amp: bool | None, tf32: bool | None, override: bool) -> Precision:
    """The run's precision: what it asks for, else what ``bench`` pins. Asking for other settings than
    a pinned one is refused in one line, unless ``override``."""
    pinned = bench.precision
    overridden = []
    for name, asked, pin in (("amp", amp, pinned.amp), ("tf32", tf32, pinned.tf32)):
        if asked is None or pin is None or asked == pin:
            continue
        if not override:
            raise ConfigError(
                f"--{'' if asked else 'no-'}{name.replace('_', '-')}: {bench.source_file or bench.name} pins precision.{name}: "
                f"{str(pin).lower()}; run without the option, or add --override-precision (recorded in results.json)"
            )
        overridden.append(name)
    return Precision(
        amp=(amp if amp is not None else pinned.amp if pinned.amp is not None else True),
        tf32=tf32 if tf32 is not None else pinned.tf32,
        overridden=tuple(overridden),
    )


def apply_tf32(device: torch.device, tf32: bool | None) -> None:
    """Set TF32 for cuDNN convolutions and matrix products on CUDA; None keeps torch's defaults."""
    if device.type == "cuda" and tf32 is not None:
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cuda.matmul.allow_tf32 = tf32


def select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"--device {name}: unknown device (use auto, cpu, cuda or cuda:N)") from None
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"--device {name}: benchbias runs on cpu or cuda, not {device.type}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name}: CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def instantiate(registry: Registry, kind: str, model: ModelConfig, where: str, source: str) -> tuple[object, Registered]:
    """The plugin class instantiated with validated params, plus its registry entry."""
    try:
        entry = registry.get(kind, model.plugin)
    except PluginError as exc:
        field = f"{where}.plugin" if kind == "translator" and model.plugin != model.name else (where if kind == "translator" else f"{where}.name")
        raise PluginError(f"{source}: {field}: {exc}") from None
    try:
        return entry.cls(**model.params), entry
    except ParamError as exc:
        raise ConfigError(f"{source}: {where}.params: {exc}") from None


def warn(message: str) -> None:
    print(f"benchbias: warning: {message}", file=sys.stderr)
