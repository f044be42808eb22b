"""The first iterations' losses of small float64 Burgers runs, pinned: a change in numerics is a deliberate one.

A code change that reorders floating-point work (a fused kernel, another summation order, a new
derivative path) changes the rounding, and rounding differences grow over training: the committed
Burgers CPU-size Adam run (2 losses, seed 0) ended at test MSE 5.86e-3 on the Intel VM that made it,
6.94e-3 at the same commit on an AMD VM and 6.10e-3 at a later commit on that AMD VM. So that such a
change is always noticed, these runs' losses (float64, one thread, eager, tiny sizes) must agree with
the values below to 1e-9 relative: far looser than float64 rounding after five steps, far tighter
than any change to the maths.

To re-pin deliberately (and say so in the commit message, with the reason the numbers moved):

    OMP_NUM_THREADS=1 python -m pytest tests/test_numerics_pinned.py --repin

prints the new values; paste them into PINNED.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from pinnbench.train import prepare, train
from tests.conftest import TINY, compose_config

PINNED = {  # (method, n_losses): {iteration: [loss columns in history order]}
    ("adam", 2): {
        1: [0.020010089518282866, 0.23324903094766078],
        2: [0.0026642286997672665, 0.2220219855348183],
        3: [0.0007644806423125251, 0.20860131704397533],
        4: [0.0003549399034301644, 0.2384254454939458],
        5: [0.00034803177416471134, 0.2220504613636275],
    },
    ("config", 3): {
        1: [0.020010089518282866, 0.19464974521601802, 0.27184831667930354],
        2: [0.016079780517435412, 0.1637971714545359, 0.2999912535362105],
        3: [0.012239174266305133, 0.137299757133735, 0.2545189112349335],
        4: [0.010473899551626788, 0.12283263831583296, 0.29326695737954944],
        5: [0.00966076674973663, 0.11568666637377814, 0.28191801427614394],
    },
    ("mconfig", 3): {  # M-ConFIG evaluates one loss per iteration; the others keep their last value
        3: [0.01937183968816588, 0.19464974521601802, 0.29350062906265695],
        4: [0.01937183968816588, 0.17161557817868286, 0.29350062906265695],
        5: [0.01937183968816588, 0.17161557817868286, 0.268822377264741],
    },
}

RTOL = 1e-9
HOW_TO_REPIN = ("The numerics changed. If that is deliberate (a new kernel, another summation order), re-pin: "
                "OMP_NUM_THREADS=1 python -m pytest tests/test_numerics_pinned.py --repin, paste the printed values "
                "into PINNED and say why in the commit message. If not, the change altered the maths or the "
                "rounding of training by accident.")


def first_losses(tmp_path, method: str, n_losses: int) -> dict[int, list[float]]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = compose_config(*TINY, f"method={method}", f"n_losses={n_losses}", "dtype=float64", "compile=false",
                             "budget.iterations=5", "log_every=1", "eval_every=5", "threads=1")
        train(prepare(cfg), tmp_path)
    finally:
        torch.set_num_threads(threads)
    history = pd.read_csv(tmp_path / "history.csv")
    columns = [c for c in history.columns if c.startswith("loss_")]
    return {int(row["iteration"]): [float(row[c]) for c in columns] for _, row in history.iterrows()
            if row["iteration"] > 0}


@pytest.mark.parametrize("method, n_losses", list(PINNED))
def test_the_first_iterations_losses_are_pinned(tmp_path, request, method, n_losses):
    found = first_losses(tmp_path, method, n_losses)
    if request.config.getoption("--repin"):
        print(f"\n    ({method!r}, {n_losses}): {{")
        for iteration, values in found.items():
            print(f"        {iteration}: [{', '.join(repr(v) for v in values)}],")
        print("    },")
        return
    for iteration, expected in PINNED[(method, n_losses)].items():
        for k, (got, want) in enumerate(zip(found[iteration], expected)):
            assert math.isclose(got, want, rel_tol=RTOL), (
                f"{method}, {n_losses} losses, iteration {iteration}, loss {k}: {got!r} != pinned {want!r} "
                f"(rtol {RTOL}). {HOW_TO_REPIN}")
