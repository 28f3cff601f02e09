"""What a results file records about the machine and code behind a run (provenance)."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

PACKAGES = ("benchbias", "torch", "monai", "timm", "numpy", "scipy", "pluggy", "nibabel", "jsonschema")


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit() -> str | None:
    """The commit of the benchbias checkout, with ``-dirty`` when its code has local changes (the
    leaderboards are data, not code: rewriting them does not make a run dirty); None outside git."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)leaderboards"], cwd=root, capture_output=True, text=True, timeout=10
        )
        return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def device_description(device: torch.device, amp: bool = False, threads: int | None = None, jobs: int = 1) -> str:
    """What computed the numbers, in words that end up on leaderboards: mixed precision, and on the
    CPU the torch threads per cell and the cells computed at once."""
    if device.type == "cuda":
        # cuDNN runs float32 convolutions in TF32 unless told not to: say which float32 ran.
        tf32 = "TF32 on" if torch.backends.cudnn.allow_tf32 else "TF32 off"
        return f"cuda: {torch.cuda.get_device_name(device)}, {'bfloat16 autocast' if amp else 'float32'} ({tf32})"
    threads = threads or torch.get_num_threads()
    per_cell = f"{threads} thread{'s' if threads > 1 else ''}"
    return f"cpu: {platform.processor() or platform.machine()}, {f'{jobs} jobs x {per_cell} each' if jobs > 1 else per_cell}"


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``'s "model name" on Linux), else what
    :func:`platform.processor` says, else the machine type."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine(threads: int | None = None) -> dict[str, Any]:
    """The CPU behind the numbers: its model, the instruction set torch's CPU kernels used (e.g.
    AVX2, AVX512) and the torch threads per cell. Networks trained on CPUs of another kind or
    instruction set, or with other thread counts, round floats differently: two runs can differ
    for that reason alone, and this says whether they could."""
    return {
        "cpu_model": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": threads or torch.get_num_threads(),
    }


def provenance(device: torch.device, amp: bool = False, threads: int | None = None, jobs: int = 1) -> dict[str, Any]:
    return {
        "packages": package_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": git_commit(),
        "device": device_description(device, amp, threads, jobs),
        "machine": machine(threads),
    }
