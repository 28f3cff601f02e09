"""Speed benchmarks (pytest-benchmark). Excluded from the default test run by the ``perf`` marker
(and from the fast tier, ``-m "not slow"``, by ``slow``): run them with
``pytest tests/perf -m perf --benchmark-enable``."""

import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/perf/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.perf)
            item.add_marker(pytest.mark.slow)
