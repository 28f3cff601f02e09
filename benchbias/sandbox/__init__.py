"""Running a translator's own code (``fit`` and ``translate``) apart from everything it is scored on.

A run normally trains and translates in the process that also holds the holdout's real targets and the
judges. With isolation on (``benchbias run --isolate``), each program of cells is trained and
translated by a child process inside an OS sandbox (bubblewrap: new user, PID, network, IPC and mount
namespaces; :mod:`benchbias.sandbox.bubblewrap`). The child receives its training arrays and the
holdout's source slices over a pipe and sends back translations as plain arrays
(:mod:`benchbias.sandbox.wire`); it sees the Python installation and the plugin files read-only and
nothing else: not the cache, the data folder, the run folder, the judges or the runner's memory, and
no network.
"""

from benchbias.foundation.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "bubblewrap": ["IsolationUnavailable", "bubblewrap_binary", "isolation_name", "sandboxed_command"],
        "isolated": ["IsolatedProgram", "train_and_translate"],
    },
)
