"""Synthetic run directories in the exact format ``pinnbench run`` writes (see pinnbench.records),
with test errors chosen by the test."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

LOSSES = ("residual", "boundary", "initial")


def config_yaml(problem: str, method: str, n_losses: int, seed: int, budget: str, amount, size: str) -> dict:
    """The resolved ``.hydra/config.yaml`` of a run (the keys the reporter reads, as Hydra writes them)."""
    return {
        "problem": {"_target_": f"problems.{problem}.{problem.title()}", "name": problem, "size": size,
                    "sizes": {"cpu": {"width": 50, "hidden_layers": 5,
                                      "points": {"residual": 2000, "boundary": 100, "initial": 100},
                                      "iterations": 3000}}},
        "method": {"_target_": f"pinnbench.methods.{method}.X", "name": method},
        "budget": {"kind": budget, "iterations": amount if budget == "iterations" else None,
                   "seconds": amount if budget == "walltime" else None},
        "n_losses": n_losses, "seed": seed, "device": "cpu", "dtype": "float32", "lr": 0.001, "final_lr": 0.0001,
        "resample": True, "eval_every": 100, "log_every": 10, "checkpoint_every": 1000, "quiet": True, "plot": False,
    }


def write_run(root: Path, *, problem="burgers", method="adam", n_losses=3, seed=0, budget="iterations", amount=200,
              test_mse=0.01, status="completed", size="cpu", ms_per_iteration=10.0, overrides=(), summary=True,
              history=True, errors=None) -> Path:
    """One run directory below ``root`` (named like ``pinnbench run`` names it); returns its path.
    ``errors``: more final errors for summary.json (``{"rel_l2": 0.1}``)."""
    label = f"it{amount}" if budget == "iterations" else f"wall{amount:g}s"
    run_dir = root / f"{problem}-{size}" / f"{method}-n{n_losses}-{label}-seed{seed}"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text(
        yaml.safe_dump(config_yaml(problem, method, n_losses, seed, budget, amount, size), sort_keys=False))
    (run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(
        [f"problem={problem}", f"method={method}", f"n_losses={n_losses}", f"seed={seed}", "quiet=true",
         *overrides]))
    iterations = amount if budget == "iterations" else int(amount * 1000 / ms_per_iteration)
    names = LOSSES[:n_losses] if n_losses == 3 else ("residual", "boundary+initial")
    if history:
        rows = [{"iteration": 0, "seconds": 0.0, "lr": 0.0, "mse_u": 0.25, "test_mse": 0.25}]
        for it in range(10, iterations + 1, 10):
            row = {"iteration": it, "seconds": it * ms_per_iteration / 1000, "lr": 1e-3,
                   **{f"loss_{n}": (k + 1) * 0.1 / it for k, n in enumerate(names)}}
            if it % 100 == 0 or it == iterations:
                error = test_mse if it == iterations else (0.25 * test_mse) ** 0.5
                row.update(mse_u=error, test_mse=error)
            rows.append(row)
        columns = ["iteration", "seconds", "lr", *[f"loss_{n}" for n in names], "mse_u", "test_mse"]
        pd.DataFrame(rows, columns=columns).to_csv(run_dir / "history.csv", index=False)
    if summary:
        seconds = iterations * ms_per_iteration / 1000
        (run_dir / "summary.json").write_text(json.dumps({
            "best_test_mse": test_mse, "budget": budget, "budget_amount": amount, "device": "cpu",
            "dtype": "float32", "iterations": iterations, "iterations_this_session": iterations,
            "losses": list(names), "method": method, "ms_per_iteration": ms_per_iteration, "mse_u": test_mse,
            "n_losses": n_losses, "problem": problem, "resumed_from": 0, "seconds": seconds, "seed": seed,
            "size": size, "status": status, "test_mse": test_mse, **(errors or {}),
        }, indent=2, sort_keys=True) + "\n")
    return run_dir


def write_study(root: Path) -> Path:
    """Burgers, 3 losses, 200 iterations: Adam (MSE 3, 4, 5 e-2) and ConFIG (1, 2, 3 e-2) over seeds
    0–2, a diverged ConFIG seed 3 and a half-written ConFIG seed 4; Kovasznay with ConFIG only
    (no Adam); Burgers at equal wall time, Adam and M-ConFIG, 2 seeds each."""
    for seed, (adam, config) in enumerate([(0.03, 0.01), (0.04, 0.02), (0.05, 0.03)]):
        write_run(root, method="adam", seed=seed, test_mse=adam, ms_per_iteration=5.0)
        write_run(root, method="config", seed=seed, test_mse=config, ms_per_iteration=8.0)
    write_run(root, method="config", seed=3, test_mse=1e6, status="diverged")
    write_run(root, method="config", seed=4, summary=False, history=False)
    write_run(root, problem="kovasznay", method="config", n_losses=2, seed=0, test_mse=0.5)
    for seed in (0, 1):
        write_run(root / "walltime", method="adam", budget="walltime", amount=2.0, seed=seed, test_mse=0.04,
                  ms_per_iteration=10.0)
        write_run(root / "walltime", method="mconfig", budget="walltime", amount=2.0, seed=seed,
                  test_mse=0.01 * (seed + 1), ms_per_iteration=5.0)
    return root


@pytest.fixture
def study(tmp_path) -> Path:
    return write_study(tmp_path / "runs")
