import os

import pytest

# Tiny test benchmarks run faster in one process than in workers that each import torch; the executor
# tests ask for --jobs themselves. Set at import, so session-scoped fixtures' runs (whose cells later
# tests reuse) see it too: cells computed at another thread count are recomputed, not reused.
os.environ["BENCHBIAS_JOBS"] = "1"
# Plugins pip-installed in this environment (the plugin guide's example, say) do not change what the
# tests discover; entry points on PYTHONPATH (the tests' own installed examples) still count.
os.environ["BENCHBIAS_IGNORE_SITE_PLUGINS"] = "1"


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Every test shares one session cache (synthetic data, prepared slices) outside $HOME."""
    cache = tmp_path_factory.getbasetemp() / "benchbias-cache"
    monkeypatch.setenv("BENCHBIAS_CACHE", str(cache))
    monkeypatch.setenv("BENCHBIAS_LEADERBOARDS", str(tmp_path_factory.getbasetemp() / "leaderboards"))
    monkeypatch.delenv("BENCHBIAS_PLUGIN_DIRS", raising=False)
    return cache


@pytest.fixture(scope="session")
def oracle_runs(tmp_path_factory):
    """The smoke benchmark's l1 and every oracle of tests/oracles/ (seed 0), once in the runner's
    process and once isolated (``runs[False]``, ``runs[True]``); ``runs["plugins"]`` is the plugin
    folder they ran from (a copy, with the public holdout oracle-lookup ships). tests/test_sandbox.py
    and tests/test_verify.py share them."""
    import shutil
    import socket

    import numpy as np
    from support import ORACLE_NAMES, ORACLES, public_holdout, run_cli, sandbox_or_skip

    sandbox_or_skip()
    cache = tmp_path_factory.getbasetemp() / "benchbias-cache"  # the tests' shared cache (isolated_cache above)
    plugins = tmp_path_factory.mktemp("oracles") / "plugins"
    shutil.copytree(ORACLES, plugins)
    np.savez(plugins / "lookup.npz", **public_holdout(cache))
    server = socket.create_server(("127.0.0.1", 0))  # accepts connections into its backlog: connecting succeeds
    runs: dict = {"plugins": plugins}
    try:
        for isolate in (False, True):
            out = tmp_path_factory.mktemp("isolated" if isolate else "in-process")
            translators = [arg for name in ORACLE_NAMES for arg in ("--translator", name)]
            result = run_cli(
                "run", "synthetic-smoke", "--methods", "l1", *translators, "--plugin-dir", str(plugins), "--out", str(out), "--no-progress",
                "--param", f"look_in={cache}", "--param", f"address=127.0.0.1:{server.getsockname()[1]}", "--threads", "1",
                *(["--isolate", "--jobs", "2"] if isolate else []),  # isolated: also in worker processes
                env={"BENCHBIAS_CACHE": str(cache), "BENCHBIAS_LEADERBOARDS": str(tmp_path_factory.getbasetemp() / "leaderboards")},
            )  # fmt: skip
            assert result.returncode == 0, result.stderr
            runs[isolate] = out
    finally:
        server.close()
    return runs
