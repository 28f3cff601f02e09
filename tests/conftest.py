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
