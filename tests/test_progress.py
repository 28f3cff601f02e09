"""Progress that suits where it goes: lines, not carriage-return bars, when stderr is a file or pipe."""
import io

from support import run_cli

from benchbias import progress


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
    cells = progress.Cells(4, True, stream=stream)
    cells.finished("l1 r=0.00 seed=0", reused=True)  # reused cells cost nothing: no line, no ETA weight
    cells.finished("l1 r=0.50 seed=0")
    cells.finished("l1 r=1.00 seed=0")
    cells.finished("gan r=0.00 seed=0", reused=True)
    assert stream.getvalue().splitlines() == [
        "cells 2/4 done, 1 reused (l1 r=0.50 seed=0); 3s elapsed, ETA 6s",
        "cells 3/4 done, 1 reused (l1 r=1.00 seed=0); 6s elapsed, ETA 3s",
        "cells 4/4 done, 2 reused (gan r=0.00 seed=0); 9s elapsed, done",
    ]
    assert progress.duration(3725) == "1h02m" and progress.duration(61) == "1m01s"


def test_a_run_logged_to_a_pipe_has_cell_counts_and_no_carriage_returns(tmp_path):
    result = run_cli("run", "synthetic-smoke", "--methods", "l1", "--out", str(tmp_path / "run"), "--threads", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr
    assert "cells 3/3 done" in result.stderr and "cells 1/3 done" in result.stderr
