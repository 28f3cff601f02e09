"""oracle-lookup: a translator that ships the public holdout with it, as an author who regenerated the
public synthetic data set (a public seeded recipe) could. ``table`` is an ``.npz`` file beside this
one holding the holdout's source slices and their real targets, as the translators see them. For a
source slice it finds there it returns the real target; any other slice it returns unchanged.

No sandbox stops it: the file travels with the plugin. Only a holdout it does not hold shows what it
is (tests/test_verify.py: ``leaderboard verify`` on the private holdout).
"""

import hashlib
from pathlib import Path

import numpy as np
import torch

from benchbias.api import Param, Translator, hookimpl


class LookupOracle(Translator):
    name = "oracle-lookup"
    paired = True
    params = {
        "table": Param("lookup.npz", "the shipped holdout, beside this file"),
        # unused: run --param gives every --translator of tests/oracles/ the same parameters
        "look_in": Param("", "unused"),
        "address": Param("", "unused"),
    }

    def fit(self, data, ctx) -> None:
        for _ in ctx.loop():
            pass
        arrays = np.load(Path(__file__).parent / self.hparams["table"])
        self.known = {digest(s): torch.from_numpy(t) for s, t in zip(arrays["source"], arrays["target"])}

    def translate(self, source: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.known.get(digest(s.numpy()), s) for s in source])


def digest(image: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(image, np.float32).tobytes()).hexdigest()


@hookimpl
def register_translators(register):
    register(LookupOracle)
