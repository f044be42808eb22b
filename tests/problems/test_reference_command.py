"""``pinnbench reference``: the documented keys in float64; bad input: a clear error and no file."""

from __future__ import annotations

import numpy as np
import pytest

from pinnbench.cli import main
from tests.conftest import run_cli
from tests.problems.conftest import make_problem


def test_reference_writes_the_documented_keys(tmp_path):
    out = tmp_path / "kovasznay.npz"
    result = run_cli("reference", "kovasznay", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout
    with np.load(out) as data:
        assert set(data.files) == {"inputs", "fields", "input_names", "field_names"}
        assert data["inputs"].dtype == np.float64 and data["fields"].dtype == np.float64
        assert data["inputs"].shape == (999, 2) and data["fields"].shape == (999, 3)
        assert list(data["input_names"]) == ["x", "y"] and list(data["field_names"]) == ["u", "v", "p"]
        inputs, fields = make_problem("kovasznay").compute_reference()
        np.testing.assert_array_equal(data["inputs"], inputs)
        np.testing.assert_array_equal(data["fields"], fields)


def test_reference_takes_a_size_and_writes_every_problem(tmp_path, capsys):
    out = tmp_path / "beltrami.npz"
    main(["reference", "beltrami", "--out", str(out), "--size", "paper"])
    with np.load(out) as data:
        assert data["inputs"].shape == (1960, 4) and list(data["field_names"]) == ["u", "v", "w", "p"]


BAD = [
    (["nope", "--out", "{tmp}/x.npz"], "problem 'nope' does not exist; allowed: allen_cahn, beltrami, burgers, helmholtz"),
    (["kovasznay", "--out", "{tmp}/missing/x.npz"], "does not exist"),
    (["kovasznay", "--out", "{tmp}/x.txt"], "must end in .npz"),
    (["kovasznay", "--out", "{tmp}/folder.npz"], "is a directory"),
    (["kovasznay", "--out", "{tmp}/x.npz", "--size", "huge"], "problem.size='huge'"),
    (["kovasznay"], "--out"),
]


@pytest.mark.parametrize("args, words", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_a_clear_error_and_writes_nothing(tmp_path, capsys, args, words):
    (tmp_path / "folder.npz").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main(["reference", *(a.format(tmp=tmp_path) for a in args)])
    assert exit_info.value.code != 0
    err = capsys.readouterr().err
    assert "error:" in err and words in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.npz"]


def test_bad_problem_from_the_console_has_no_traceback(tmp_path):
    result = run_cli("reference", "nope", "--out", str(tmp_path / "x.npz"))
    assert result.returncode == 2 and result.stderr.startswith("error: problem 'nope'")
    assert "Traceback" not in result.stderr and not list(tmp_path.iterdir())
