"""What a run is asked to do (:class:`RunOptions`), on which device, with which plugins.

Every plugin and parameter of a benchmark is checked here (:func:`instantiate`), before any data is
read: a typo in a benchmark file is one line naming the file and field, not a failure an hour in.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from benchbias.foundation.config import ConfigError, ModelConfig
from benchbias.foundation.contract import ParamError
from benchbias.foundation.registry import PluginError, Registered, Registry


@dataclass
class RunOptions:
    out: Path
    device: str = "auto"
    methods: tuple[str, ...] = ()
    data_path: str | None = None
    amp: bool = True
    progress: bool = True
    plugin_dirs: tuple[Path, ...] = field(default_factory=tuple)
    jobs: int | None = 1  # worker processes for cells; 1: in this process; None: executors.default_jobs (the CLI's default)
    executor: str = "local"  # or "ray"
    address: str | None = None  # the Ray cluster's
    threads: int | None = None  # torch threads per worker process (default 1)
    cells_per_gpu: int = 1  # on CUDA, cells sharing one GPU at once (local workers, or fractional Ray GPUs)
    isolate: bool = False  # translators' fit and translate in the OS sandbox (benchbias.sandbox)


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
