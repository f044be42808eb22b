"""What every figure of a report shares: one colour per method, file names, saving."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from matplotlib import colormaps
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from pinnbench.report.collect import ADAM_TIME, variant_tag

FORMATS = ("png", "pdf")
PANEL_TITLES = {"iterations": "equal iterations", "walltime": "equal wall time"}
BASELINE_COLOR = "#000000"


def method_colors(methods: Iterable[str], baseline: str = "adam") -> dict[str, str]:
    """One colour per method label, the same for the same set of labels: Adam black, the others in
    sorted order through tab10 (its grey left out), then tab20's light shades, then around again."""
    palette = [to_hex(c) for i, c in enumerate(colormaps["tab10"].colors) if i != 7]
    palette += [to_hex(c) for i, c in enumerate(colormaps["tab20"].colors) if i % 2 and i != 15]
    others = sorted(set(methods) - {baseline})
    return {baseline: BASELINE_COLOR, **{m: palette[i % len(palette)] for i, m in enumerate(others)}}


def save(fig: Figure, out_dir: Path, name: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.{ext}" for ext in FORMATS]
    for path in paths:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return paths


def file_label(setting: dict) -> str:
    """``burgers-cpu_n3_it200``, and the variant's hash if there is one (as in run directory names)."""
    amount = setting["budget_amount"]
    budget = f"it{amount:g}" if setting["budget"] == "iterations" else \
        "walladam" if amount == ADAM_TIME else f"wall{amount:g}s"
    label = f"{setting['problem']}-{setting['size']}_n{setting['n_losses']}_{budget}"
    return f"{label}_{variant_tag(setting['variant'])}" if setting["variant"] else label
