"""M-ConFIG: ConFIG on per-loss momenta, back-propagating only some losses per iteration
(Liu, Chu, Thuerey, ICLR 2025, §3.2 and Algorithm 2)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import Tensor

from pinnbench import aggregators
from pinnbench.errors import ConfigError
from pinnbench.methods.base import (Losses, Method, MethodOptions, gradient_matrix, require, seeded_generator,
                                    write_gradient)
from pinnbench.optimizers.adam import AdamOptions
from pinnbench.optimizers.base import Optimizer, OptimizerOptions

ORDERS = ("cyclic", "random")


@dataclass
class MConFIGOptions(MethodOptions):
    beta1: float = 0.9  # first moments, one per loss
    beta2: float = 0.999  # second moment of the pseudo-gradient
    refresh: int = 1  # losses back-propagated per iteration
    order: str = "cyclic"  # cyclic | random
    start: int = 1
    """The loss refreshed first in cyclic order: 1 (the paper's code, whose iteration count starts
    at 1: the boundary loss first, then 0, 1, … for 2 losses) or any other index."""

    def validate(self, n_losses: int) -> None:
        require(0 <= self.beta1 < 1, "beta1", self.beta1, "0 <= beta1 < 1")
        require(0 <= self.beta2 < 1, "beta2", self.beta2, "0 <= beta2 < 1")
        require(1 <= self.refresh <= n_losses, "refresh", self.refresh,
                f"1 <= refresh <= {n_losses} (the number of losses)")
        require(self.order in ORDERS, "order", self.order, " | ".join(ORDERS))
        require(0 <= self.start < n_losses, "start", self.start, f"0 <= start < {n_losses} (the number of losses)")


class MConFIG(Method):
    """Each iteration refreshes r losses (cyclic: the next r in turn, from loss ``start`` on; random:
    r distinct ones drawn from the method's generator), evaluating and back-propagating only those, and updates their
    first moments m_i ← β1 m_i + (1 − β1) g_i, each with its own count t_i. Until every loss has
    been seen the update is zero. Then, with t the number of combined steps:

        m̂_i = m_i / (1 − β1^{t_i}),   c = ConFIG(m̂_1 … m̂_k),
        f_t = c (1 − β1^t),   p = (f_t − β1 f_{t−1}) / (1 − β1)   (the pseudo-gradient),
        s ← β2 s + (1 − β2) p²,   ŝ = s / (1 − β2^t),   update c / (√ŝ + 1e-8),

    applied by plain SGD at the scheduled learning rate. The history's ``loss_<name>`` columns hold
    each loss's latest evaluated value (those not refreshed this iteration are a few steps old).

    M-ConFIG takes its own steps: its moments are Adam's (first moments per loss, combined by
    ConFIG; the second moment of the pseudo-gradient), set by ``method.beta1``/``beta2``, and SGD
    only applies them. So it runs with ``optimizer=adam`` at its defaults, which it stands for (the
    paper's M-ConFIG), and refuses any other optimiser or Adam option (:meth:`check_optimizer`):
    SOAP, PSGD or Muon would precondition or orthogonalise an update whose moments are already formed.
    """

    Options = MConFIGOptions
    description = "M-ConFIG: ConFIG on per-loss momenta, refreshing some losses per iteration (Liu et al. 2025)"

    def __init__(self, options: MConFIGOptions, n_losses: int, params: Sequence[Tensor]) -> None:
        super().__init__(options, n_losses, params)
        like = self.params[0]
        d = sum(p.numel() for p in self.params)
        self.m = torch.zeros(n_losses, d, device=like.device, dtype=like.dtype)
        self.counts = [0] * n_losses
        self.s = torch.zeros(d, device=like.device, dtype=like.dtype)
        self.combined = torch.zeros_like(self.s)  # f_{t−1}
        self.t = 0
        self.iteration = 0
        self.generator = seeded_generator()

    @classmethod
    def check_optimizer(cls, options: OptimizerOptions) -> None:
        if options == AdamOptions():
            return
        shown = options.name
        if isinstance(options, AdamOptions):
            default = dataclasses.asdict(AdamOptions())
            shown += " with " + ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(options).items() if default[k] != v)
        raise ConfigError(f"method=mconfig takes its own Adam-type steps (per-loss first moments, a second "
                          f"moment of the pseudo-gradient, method.beta1/beta2, applied by SGD), so it runs only "
                          f"with optimizer=adam at its defaults; got optimizer={shown}.")

    def make_optimizer(self, lr: float, optimizer: Optimizer | None = None) -> torch.optim.Optimizer:
        """Plain SGD: the step c / (√ŝ + 1e-8) is formed by :meth:`step`."""
        return torch.optim.SGD(self.params, lr=lr)

    def refreshed(self) -> list[int]:
        """The losses to back-propagate at this iteration."""
        k, r = self.n_losses, self.options.refresh
        if self.options.order == "random":
            return sorted(torch.randperm(k, generator=self.generator)[:r].tolist())
        return [(self.options.start + self.iteration * r + j) % k for j in range(r)]

    def step(self, losses: Losses) -> None:
        beta1, beta2 = self.options.beta1, self.options.beta2
        indices = self.refreshed()
        self.iteration += 1
        G = gradient_matrix(losses.each(indices), self.params)
        self.m[indices] = beta1 * self.m[indices] + (1 - beta1) * G
        for i in indices:
            self.counts[i] += 1
        if min(self.counts) == 0:
            write_gradient(self.params, torch.zeros_like(self.s))
            return
        self.t += 1
        m_hat = torch.stack([m / (1 - beta1**count) for m, count in zip(self.m, self.counts)])
        c = aggregators.config(m_hat)
        f = c * (1 - beta1**self.t)
        pseudo = (f - beta1 * self.combined) / (1 - beta1)
        self.combined = f
        self.s = beta2 * self.s + (1 - beta2) * pseudo.square()
        s_hat = self.s / (1 - beta2**self.t)
        write_gradient(self.params, c / (s_hat.sqrt() + 1e-8))

    def state_dict(self) -> dict[str, Any]:
        return {"m": self.m, "counts": list(self.counts), "s": self.s, "combined": self.combined, "t": self.t,
                "iteration": self.iteration, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.m = state["m"].to(self.m)
        self.counts = list(state["counts"])
        self.s, self.combined = state["s"].to(self.s), state["combined"].to(self.combined)
        self.t, self.iteration = state["t"], state["iteration"]
        self.generator.set_state(state["generator"])
