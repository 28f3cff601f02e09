"""Progress that suits where it goes: lines, not carriage-return bars, when stderr is a file or pipe."""

import io

import pytest
from support import run_cli

from benchbias.run import progress


def test_steps_write_lines_to_a_pipe_and_cells_give_an_overall_eta(monkeypatch):
    clock = iter(range(0, 10_000, 3))  # every call to the clock moves 3 s
    monkeypatch.setattr(progress.time, "monotonic", lambda: float(next(clock)))
    stream = io.StringIO()
    with progress.Steps("cyclegan r=0.30 seed=0", 20, True, stream=stream, interval=10) as steps:
        for _ in range(20):
            steps.update({"loss": 1.0})
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert 3 <= len(lines) <= 7, lines  # one line per 10 s of a 60 s loop, not one per step
    assert lines[0] == "cyclegan r=0.30 seed=0: step 4/20, 0.3 steps/s, ETA 48s"

    stream = io.StringIO()
    cells = progress.Cells(["l1", "l1", "l1", "gan", "gan"], True, stream=stream)  # the clock starts at 60 s
    cells.finished("l1 r=0.00 seed=0", "l1", reused=True)  # 63 s: reused cells cost nothing, print nothing
    cells.finished("l1 r=0.50 seed=0", "l1")  # 66 s: 3 s for an l1 cell
    cells.finished("gan r=0.00 seed=0", "gan")  # 69 s: 3 s for a gan cell
    cells.finished("l1 r=1.00 seed=0", "l1")  # 72 s
    cells.finished("gan r=1.00 seed=0", "gan", reused=True)
    assert stream.getvalue().splitlines() == [
        "cells 2/5 done, 1 reused (l1 r=0.50 seed=0); 6s elapsed, ETA 9s",  # l1, gan, gan left: all at the l1 mean
        "cells 3/5 done, 1 reused (gan r=0.00 seed=0); 9s elapsed, ETA 6s",
        "cells 4/5 done, 1 reused (l1 r=1.00 seed=0); 12s elapsed, ETA 3s",  # gan left, at the gan mean
        "cells 5/5 done, 2 reused (gan r=1.00 seed=0); 15s elapsed, done",
    ]
    assert progress.duration(3725) == "1h02m" and progress.duration(61) == "1m01s"

    # Two workers, longest cells first: each cell's own time, shared between the workers
    stream = io.StringIO()
    cells = progress.Cells(["cyclegan", "l1", "cyclegan", "l1"], True, stream=stream, workers=2)
    cells.finished("l1 r=0.00 seed=0", "l1", seconds=10.0)
    cells.finished("cyclegan r=0.00 seed=0", "cyclegan", seconds=60.0)
    assert stream.getvalue().splitlines()[-1].endswith("ETA 35s")  # (60 + 10) / 2


@pytest.mark.slow
def test_a_run_logged_to_a_pipe_has_cell_counts_and_no_carriage_returns(tmp_path):
    result = run_cli("run", "synthetic-smoke", "--methods", "l1", "--out", str(tmp_path / "run"), "--threads", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr
    assert "cells 3/3 done" in result.stderr and "cells 1/3 done" in result.stderr
