"""Verified leaderboard entries: an entry's sampled cells re-run from its pinned plugin in the OS
sandbox, on the public holdout and on the maintainers' private one, then signed
(``benchbias leaderboard verify``; the signatures are :mod:`benchbias.records.signatures`)."""

from benchbias.foundation.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "private": ["PRIVATE_HARDENING", "SECRET_VARIABLE", "hardened_first_judge", "private_benchmark", "read_secret", "season"],
        "verify": ["Verification", "VerificationError", "sample_cells", "tolerances", "verify_entry"],
    },
)
