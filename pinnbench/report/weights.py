"""The loss weights that weighting methods end with, from the ``weight_<loss>`` columns of history.csv.

Methods that weight the losses (LRA, ReLoBRaLo, MinMax, gradient-norm and NTK weighting) log each
loss's weight w_i of Σ_i w_i L_i every ``log_every`` iterations. Per setting, method and loss the
table gives the weight each run ends with (its last logged value), as the median, min and max over
seeds. Methods whose logged weights never leave 1 (Adam's plain sum) are left out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pinnbench.report.collect import SETTING
from pinnbench.report.tables import cell, setting_view

PREFIX = "weight_"
COLUMNS = [*SETTING, "method", "loss", "n_seeds", "final_median", "final_min", "final_max"]
NOTE = ("Loss weights w_i of Σ_i w_i L_i that each run ends with (its last logged `weight_<loss>`), median, min "
        "and max over seeds; methods whose weights stay 1 are left out.")


def final_weights(history: pd.DataFrame) -> dict[str, float]:
    """{loss: the last logged weight} of one run (empty when it logs none)."""
    out = {}
    for column in (c for c in history.columns if c.startswith(PREFIX)):
        logged = history[column].dropna()
        if len(logged):
            out[column.removeprefix(PREFIX)] = float(logged.iloc[-1])
    return out


def moves(frames: list[pd.DataFrame]) -> bool:
    """Whether some logged weight of these runs differs from 1."""
    return any(not np.allclose(h[[c for c in h.columns if c.startswith(PREFIX)]].dropna(how="all").to_numpy(float), 1.0,
                               rtol=0.0, atol=1e-12, equal_nan=True) for h in frames)


def weight_table(histories: dict[tuple, dict[str, list[pd.DataFrame]]]) -> pd.DataFrame:
    """Per setting (keyed by the :data:`SETTING` values), method and loss: n_seeds and the median,
    min and max over seeds of the final weight (:data:`COLUMNS`)."""
    rows = []
    for key, by_method in histories.items():
        for method, frames in by_method.items():
            if not moves(frames):
                continue
            finals = pd.DataFrame([final_weights(h) for h in frames])
            for loss in finals.columns:
                seeds = finals[loss].dropna()
                rows.append({**dict(zip(SETTING, key)), "method": method, "loss": loss, "n_seeds": len(seeds),
                             "final_median": seeds.median(), "final_min": seeds.min(), "final_max": seeds.max()})
    return pd.DataFrame(rows, columns=COLUMNS)


def weights_view(table: pd.DataFrame) -> pd.DataFrame:
    """The weights table as text cells (three significant digits)."""
    view = setting_view(table)
    view["loss"] = table["loss"]
    view["n_seeds"] = table["n_seeds"].map("{:.0f}".format)
    for column in ("final_median", "final_min", "final_max"):
        view[column] = [cell("{:.3g}", v) for v in table[column]]
    return view
