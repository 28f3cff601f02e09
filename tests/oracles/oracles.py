"""Oracles: translators that reach for ground truth from inside ``fit`` and ``translate``, as an
informed method author could in the runner's process. Each returns a white image (+1) when it found
what it looked for and a black one (-1) when it did not, so its stored translations say which. Run
isolated (``benchbias run --isolate``) every one must come back black (tests/test_sandbox.py).

    oracle-cache           reads the prepared data where it lies (``look_in``: the cache folder)
    oracle-stack-walker    searches the interpreter's objects for the runner's holdout targets
    oracle-scorer-patcher  replaces the runner's scoring function so its cells score as perfect
    oracle-network         opens a TCP connection (``address``: host:port of a listening server)
    oracle-import-patcher  returns a gray image; its module, when imported, replaces the runner's
                           scoring function so that gray images score as the real targets
                           (so only a patched scorer could make it score well)
"""

import gc
import os
import socket

import torch

from benchbias.api import Param, Translator, hookimpl


class Oracle(Translator):
    paired = False
    # Every oracle takes both (run --param gives each --translator the same parameters).
    params = {
        "look_in": Param("", "oracle-cache: the folder to search (the runner's cache)"),
        "address": Param("", "oracle-network: host:port to connect to"),
    }

    def fit(self, data, ctx) -> None:
        for _ in ctx.loop():
            pass
        self.found = self.look()

    def look(self) -> bool:
        raise NotImplementedError

    def translate(self, source: torch.Tensor) -> torch.Tensor:
        return torch.full_like(source, 1.0 if self.found else -1.0)


class CacheOracle(Oracle):
    name = "oracle-cache"

    def look(self) -> bool:
        for folder, _, files in os.walk(self.hparams["look_in"]):
            for name in files:
                try:
                    with open(os.path.join(folder, name), "rb") as handle:
                        if handle.read(1):
                            return True
                except OSError:
                    pass
        return False


class StackWalker(Oracle):
    name = "oracle-stack-walker"

    def look(self) -> bool:
        return any(hasattr(type(obj), "holdout_target") or "holdout_target" in getattr(obj, "__dict__", {}) for obj in gc.get_objects())


class ScorerPatcher(Oracle):
    name = "oracle-scorer-patcher"

    def look(self) -> bool:
        from benchbias.run import compute

        original = compute.score_cell

        def perfect(metrics, evidence, seed=0):
            evidence.translated.copy_(evidence.real)  # score the real targets instead of the output
            return original(metrics, evidence, seed=seed)

        compute.score_cell = perfect
        return False  # its output stays black: only a patched scorer could make it score well


class NetworkOracle(Oracle):
    name = "oracle-network"

    def look(self) -> bool:
        host, port = self.hparams["address"].rsplit(":", 1)
        try:
            socket.create_connection((host, int(port)), timeout=2).close()
            return True
        except OSError:
            return False


class ImportPatcher(Oracle):
    name = "oracle-import-patcher"

    def look(self) -> bool:
        return False

    def translate(self, source: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(source)  # gray: 0.5 on [0, 1]


def _patch_scoring_at_import() -> None:
    """Runs wherever this file is imported: in the runner's process unless the run is isolated."""
    from benchbias.run import compute

    original = compute.score_cell

    def forged(metrics, evidence, seed=0):
        if bool((evidence.translated == 0.5).all()):  # oracle-import-patcher's cells
            evidence.translated.copy_(evidence.real)
        return original(metrics, evidence, seed=seed)

    compute.score_cell = forged


_patch_scoring_at_import()


@hookimpl
def register_translators(register):
    for cls in (CacheOracle, StackWalker, ScorerPatcher, NetworkOracle, ImportPatcher):
        register(cls)
