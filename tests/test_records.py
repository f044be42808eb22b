import json
import signal
import subprocess
import sys
import time

import pytest

from pinnbench import records


def test_atomic_write_replaces_the_file_whole(tmp_path):
    path = tmp_path / "summary.json"
    records.write_json(path, {"a": 1})
    records.write_json(path, {"a": 2})
    assert records.read_json(path) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("old\n")
    with pytest.raises(RuntimeError):
        with records.atomic_path(path) as tmp:
            tmp.write_text("half of a new fi")
            raise RuntimeError("writer died")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["history.csv"]


WRITER = """
import sys
from pinnbench import records
i = 0
while True:
    records.write_json(sys.argv[1], {"i": i, "payload": "x" * (200_000 + i)})
    i += 1
"""


def test_a_killed_writer_never_leaves_a_half_file(tmp_path):
    """SIGKILL a process that rewrites a large JSON file in a loop: the file always parses."""
    path = tmp_path / "summary.json"
    for delay in (0.0, 0.05, 0.13):
        path.unlink(missing_ok=True)
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)])
        deadline = time.monotonic() + 60
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        data = json.loads(path.read_text())
        assert data["payload"] == "x" * (200_000 + data["i"])


def test_history_columns_are_ordered_for_reading(tmp_path):
    path = tmp_path / "history.csv"
    records.write_history(path, [{"test_mse": 0.1, "loss_b": 2.0, "iteration": 0, "lr": 0.0, "seconds": 0.0,
                                  "mse_u": 0.1, "loss_a": 1.0}])
    header = path.read_text().splitlines()[0].split(",")
    assert header == ["iteration", "seconds", "lr", "loss_b", "loss_a", "test_mse", "mse_u"]
