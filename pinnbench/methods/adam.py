"""Adam on the plain sum of the losses: the equal-weight baseline."""

from pinnbench.methods.base import WeightingMethod


class Adam(WeightingMethod):
    description = "Adam on Σ_i L_i (equal weights)"
