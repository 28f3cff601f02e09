"""The maintainers' private holdout: a data set made from a secret that no submitter holds.

For a synthetic benchmark the secret seeds the generator and the subject split
(:func:`private_benchmark`): the same recipe, other subjects, so a translator that memorised or
regenerated the public holdout learns nothing about these. For a benchmark on real data the private
holdout is a folder of withheld subjects (``--private-data``). The judges of the private data are
trained on it by benchbias's own code and kept in the cache of the machine that verifies; only their
sha256 and quality records are published, in the signed verification record. A new secret starts a new
board season (:func:`season`).

The private first judge is also trained against gradient attacks (:data:`PRIVATE_HARDENING`, where its
plugin has adversarial training): a translator may attack the public judges, whose weights it holds,
and such an attack carries over to a plainly trained judge of the same recipe far more than to a
hardened one (docs/concepts/judges.md). The public judges stay as they are; a hardened public judge
would make attacks on it carry over to the others.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import replace
from typing import TYPE_CHECKING

from benchbias.data.sources import cache_dir
from benchbias.foundation.config import Benchmark, ConfigError

if TYPE_CHECKING:
    from benchbias.foundation.registry import Registry

SECRET_VARIABLE = "BENCHBIAS_HOLDOUT_SECRET"
# The private first judge's adversarial training: PGD examples of at most 0.05 per pixel on [-1, 1], 3
# steps, half of each class in every batch (the recipe that keeps impartial-cnn within the judge standard).
PRIVATE_HARDENING = {"adversarial_eps": 0.05, "adversarial_steps": 3, "adversarial_share": 0.5}
MIN_SECRET_CHARACTERS = 16


def read_secret() -> str:
    """The holdout secret from ``$BENCHBIAS_HOLDOUT_SECRET``; one clear line when it is missing or short."""
    secret = os.environ.get(SECRET_VARIABLE, "")
    if len(secret) < MIN_SECRET_CHARACTERS:
        raise ConfigError(f"${SECRET_VARIABLE}: set it to the maintainers' holdout secret (at least {MIN_SECRET_CHARACTERS} characters)")
    return secret


def derived(secret: str, purpose: str) -> bytes:
    return hmac.new(secret.encode(), f"benchbias {purpose}".encode(), hashlib.sha256).digest()


def season(secret: str) -> str:
    """The public name of a secret: the same for every entry verified with it, and nothing of it."""
    return derived(secret, "season").hex()[:16]


def derived_seed(secret: str, purpose: str) -> int:
    return int.from_bytes(derived(secret, purpose)[:4], "big") & 0x7FFFFFFF


def private_benchmark(bench: Benchmark, secret: str, private_data: str | None = None) -> Benchmark:
    """``bench`` on its private data: the synthetic generator and the split seeded from ``secret``,
    or the withheld subjects in ``private_data``. Its judges are never the pinned ones (those are of
    the public data): the source file is moved out of the benchmark folder, so they are trained for
    the private data and cached."""
    if private_data is not None:
        dataset = replace(bench.dataset, synthetic=None, path=private_data)
    elif bench.dataset.synthetic is not None:
        dataset = replace(bench.dataset, synthetic=replace(bench.dataset.synthetic, seed=derived_seed(secret, "synthetic data")))
    else:
        raise ConfigError(f"{bench.source_file}: its data is a folder; verifying on a private holdout needs --private-data FOLDER of withheld subjects")
    split = replace(bench.split, seed=derived_seed(secret, "split")) if isinstance(bench.split.holdout_subjects, int) else bench.split
    where = cache_dir() / "private" / season(secret) / f"{bench.name}.yaml"  # no judges/ beside it
    return replace(bench, dataset=dataset, split=split, source_file=str(where))


def hardened_first_judge(bench: Benchmark, registry: Registry) -> Benchmark:
    """``bench`` with :data:`PRIVATE_HARDENING` over its first judge's recipe, when the judge's plugin has
    those parameters (else ``bench`` as it is)."""
    plugin = registry.get("classifier", bench.classifier.plugin).cls
    if not set(PRIVATE_HARDENING) <= set(getattr(plugin, "params", {})):
        return bench
    return replace(bench, classifier=replace(bench.classifier, params={**bench.classifier.params, **PRIVATE_HARDENING}))
