"""NTK weighting (Wang, Yu, Perdikaris, "When and why PINNs fail to train: a neural tangent kernel
perspective", J. Comput. Phys. 449 (2022) 110768), in the form of the authors' jaxpi library
(scheme ``ntk``): gradient-norm weighting with each loss's mean NTK diagonal as its scale."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import Tensor

from pinnbench.methods.base import Losses, WeightingMethod, require, seeded_generator
from pinnbench.methods.gradnorm import GradNorm, GradNormOptions


@dataclass
class NTKOptions(GradNormOptions):
    name: str = "ntk"
    samples: int = 64  # NTK diagonal entries computed per loss term and recomputation; 0: all of them

    def validate(self, n_losses: int) -> None:
        super().validate(n_losses)
        require(self.samples >= 0, "samples", self.samples, "samples >= 0 (0: every entry)")


def ntk_diagonal_mean(residual: Tensor, params: Sequence[Tensor], entries: Sequence[int] | None = None) -> Tensor:
    """(1/rows) Σ_{p,e} ‖∂r_pe/∂θ‖² for a residual r [rows, n_eq]: the trace of the term's neural
    tangent kernel K = J Jᵀ (J = ∂r/∂θ, one row per entry) over its number of points, i.e. the mean
    over points of the NTK diagonal summed over equations (jaxpi's ``ntk_fn``: K_pp = ‖∂r_p/∂θ‖²).

    With ``entries`` (indices into the flattened residual) it is estimated from those entries alone:
    n_eq times their mean (unbiased when they are drawn uniformly). Each entry costs one backward
    pass through the residual's graph.
    """
    flat = residual.reshape(-1)
    chosen = range(flat.numel()) if entries is None else entries
    diagonal = []
    for e in chosen:
        grads = torch.autograd.grad(flat[e], params, retain_graph=True, allow_unused=True)
        diagonal.append(sum(g.square().sum() for g in grads if g is not None))
    per_entry = torch.stack(diagonal).mean()
    return per_entry * (flat.numel() / max(residual.shape[0], 1))


class NTK(GradNorm):
    """Gradient-norm weighting (:class:`~pinnbench.methods.gradnorm.GradNorm`: moving average
    ``momentum``, recomputed at iterations 1, 1 + every, …) with the scale of loss i

        s_i = Σ_{terms t of loss i} (1/N_t) Σ_{points p, equations e} ‖∂r_{t,pe}/∂θ‖²,

    the trace of its neural tangent kernel normalised as the loss is (each term a mean over its N_t
    points), which is jaxpi's mean NTK diagonal for a loss of one scalar residual. The residuals come
    from ``losses.residuals(i)`` on the iteration's points; per-entry gradients are taken by a loop of
    single-entry backward passes (the Taylor-mode derivatives have no vmap rule, so ``torch.func``
    and batched gradients are not available), over ``samples`` entries per term drawn uniformly
    without replacement from the method's generator (all entries when ``samples`` is 0 or at least
    their number, as jaxpi). Cost of a recomputing iteration: one extra forward pass of every term,
    and ``samples`` backward passes per term, each about as costly as that term's backward pass in a
    training step (Burgers at CPU size, 64 samples, one thread: about 1 s every 1 000 iterations, some
    3 % of Adam's time); every other iteration costs what Adam's does.
    """

    Options = NTKOptions
    description = ("NTK weighting: w_i ∝ mean_j tr K_j / tr K_i (mean NTK diagonal per loss), moving average, "
                   "recomputed every `every` iterations (Wang, Yu, Perdikaris 2022; jaxpi)")

    def __init__(self, options: NTKOptions, n_losses: int, params: Sequence[Tensor]) -> None:
        super().__init__(options, n_losses, params)
        self.generator = seeded_generator()

    def entries(self, n: int) -> list[int] | None:
        """Which of a term's n residual entries to differentiate (None: all)."""
        samples = self.options.samples
        if samples == 0 or samples >= n:
            return None
        return torch.randperm(n, generator=self.generator)[:samples].tolist()

    def scale(self, residuals: list[Tensor]) -> Tensor:
        """s_i of one loss from the residuals of its terms."""
        return sum(ntk_diagonal_mean(r, self.params, self.entries(r.numel())) for r in residuals)

    def recompute_and_step(self, losses: Losses) -> None:
        self.reweight(torch.stack([self.scale(losses.residuals(i)) for i in range(self.n_losses)]))
        WeightingMethod.step(self, losses)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.generator.set_state(state["generator"])
