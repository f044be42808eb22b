"""Aggregators: a shared battery of properties, and agreement with independent implementations
(torchjd's aggregators and the official ``conflictfree`` package).

A new aggregator gets the battery by adding one line to ``AGGREGATORS`` and to the property lists
that hold for it.
"""

from __future__ import annotations

import pytest
import torch
from conflictfree.grad_operator import ConFIG_update, ConFIGOperator, IMTLGOperator, PCGradOperator
from torch import Tensor
from torchjd.aggregation import IMTLG, PCGrad, ConFIG

from pinnbench.aggregators import config, imtlg, pcgrad

D = 60  # parameters per gradient


def relative_difference(a: Tensor, b: Tensor) -> float:
    return float((a - b).norm() / b.norm())


# ----- input samplers -----------------------------------------------------------------------------
def typical(k: int, seed: int, dtype=torch.float64) -> Tensor:
    """k random Gaussian gradients."""
    return torch.randn(k, D, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def conflicting(k: int, seed: int, dtype=torch.float64) -> Tensor:
    """Gradients dominated by ± one shared direction: pairwise cosines near ±0.9."""
    generator = torch.Generator().manual_seed(seed)
    shared = torch.randn(D, generator=generator, dtype=dtype)
    signs = torch.tensor([(-1.0) ** i for i in range(k)], dtype=dtype)
    return signs[:, None] * shared + 0.35 * torch.randn(k, D, generator=generator, dtype=dtype)


def spread(k: int, seed: int, dtype=torch.float64) -> Tensor:
    """Conflicting gradients whose lengths span five orders of magnitude (1 … 1e-5)."""
    scales = torch.logspace(0, -5, k, dtype=dtype)[torch.randperm(k, generator=torch.Generator().manual_seed(seed))]
    return scales[:, None] * conflicting(k, seed + 1000, dtype)


SAMPLERS = {"typical": typical, "conflicting": conflicting, "spread": spread}
MATRICES = [pytest.param(sampler(k, seed), id=f"{name}-k{k}-s{seed}")
            for name, sampler in SAMPLERS.items() for k in (2, 3, 4, 5) for seed in range(4)]
PAIRS = [pytest.param(sampler(2, seed), id=f"{name}-k2-s{seed}") for name, sampler in SAMPLERS.items() for seed in range(4)]
SINGLE = [pytest.param(typical(1, 0), id="k1"), pytest.param(spread(1, 3), id="k1-small")]


def seeded_pcgrad(G: Tensor) -> Tensor:
    return pcgrad(G, torch.Generator().manual_seed(0))


AGGREGATORS = {"config": config, "pcgrad": seeded_pcgrad, "imtlg": imtlg}


def battery(property_holds_for: dict[str, list]) -> list:
    """(aggregator, matrix) parameters for every aggregator a property holds for."""
    return [pytest.param(AGGREGATORS[name], *m.values, id=f"{name}-{m.id}")
            for name, matrices in property_holds_for.items() for m in matrices]


EVERYWHERE = {name: MATRICES + SINGLE for name in AGGREGATORS}
ORDER_FREE = {"config": MATRICES, "imtlg": MATRICES, "pcgrad": PAIRS}


# ----- property checks ----------------------------------------------------------------------------
@pytest.mark.parametrize("aggregate, G", battery(EVERYWHERE))
def test_returns_a_finite_vector_of_the_gradients_shape_dtype_and_device(aggregate, G):
    for matrix in (G, G.float()):
        g = aggregate(matrix)
        assert g.shape == matrix.shape[1:] and g.dtype == matrix.dtype and g.device == matrix.device
        assert torch.isfinite(g).all()


@pytest.mark.parametrize("aggregate, G", battery({"config": MATRICES, "pcgrad": PAIRS}))
def test_non_conflicting(aggregate, G):
    """g_iᵀg ≥ 0 for every i (strictly, for ConFIG with linearly independent rows)."""
    g = aggregate(G)
    assert (G @ g >= -1e-12 * G.norm(dim=1) * g.norm()).all()


@pytest.mark.parametrize("aggregate, G", battery({"config": MATRICES, "imtlg": MATRICES}))
def test_equal_projections_on_every_unit_gradient(aggregate, G):
    g = aggregate(G)
    cosines = (G @ g) / (G.norm(dim=1) * g.norm())
    torch.testing.assert_close(cosines, cosines.mean().expand_as(cosines), rtol=0, atol=1e-9)


@pytest.mark.parametrize("aggregate, G", battery(ORDER_FREE))
def test_permutation_invariant(aggregate, G):
    permutation = torch.randperm(G.shape[0], generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(aggregate(G[permutation]), aggregate(G), rtol=1e-9, atol=1e-12 * G.norm())


@pytest.mark.parametrize("aggregate, G", battery(EVERYWHERE))
def test_positively_homogeneous(aggregate, G):
    torch.testing.assert_close(aggregate(7.5 * G), 7.5 * aggregate(G), rtol=1e-9, atol=1e-12 * G.norm())


@pytest.mark.parametrize("aggregate, G", battery({"config": MATRICES, "imtlg": MATRICES}))
def test_direction_invariant_to_rescaling_one_gradient(aggregate, G):
    scaled = G.clone()
    scaled[-1] *= 1e3
    a, b = aggregate(G), aggregate(scaled)
    torch.testing.assert_close(b / b.norm(), a / a.norm(), rtol=0, atol=1e-9)


@pytest.mark.parametrize("aggregate, G", battery({name: SINGLE for name in AGGREGATORS}))
def test_one_gradient_is_returned_unchanged(aggregate, G):
    torch.testing.assert_close(aggregate(G), G[0], rtol=1e-12, atol=0)


@pytest.mark.parametrize("aggregate", AGGREGATORS.values(), ids=AGGREGATORS.keys())
def test_zero_gradients_give_a_zero_update(aggregate):
    torch.testing.assert_close(aggregate(torch.zeros(3, D)), torch.zeros(D))


@pytest.mark.parametrize("aggregate", AGGREGATORS.values(), ids=AGGREGATORS.keys())
def test_rejects_what_is_not_a_gradient_matrix(aggregate):
    with pytest.raises(ValueError):
        aggregate(torch.zeros(D))
    with pytest.raises(TypeError):
        aggregate(torch.zeros(2, D, dtype=torch.int64))


def test_config_length_is_the_sum_of_the_projections():
    G = spread(4, 0)
    g = config(G)
    unit = g / g.norm()
    torch.testing.assert_close(g.norm(), (G @ unit).sum(), rtol=1e-12, atol=0)


def test_imtlg_weights_sum_to_one():
    """g = Σ α_i g_i with Σ α_i = 1: solve for α by least squares and check its sum."""
    G = spread(3, 2)
    alpha = torch.linalg.lstsq(G.T, imtlg(G)[:, None]).solution[:, 0]
    torch.testing.assert_close(alpha.sum(), torch.tensor(1.0, dtype=G.dtype), rtol=1e-9, atol=0)


def test_pcgrad_order_comes_from_the_generator():
    G = conflicting(5, 0)
    assert relative_difference(pcgrad(G, torch.Generator().manual_seed(1)),
                               pcgrad(G, torch.Generator().manual_seed(1))) == 0
    results = {tuple(pcgrad(G, torch.Generator().manual_seed(s)).tolist()) for s in range(20)}
    assert len(results) > 1  # with k = 5 strongly conflicting gradients the order matters


# ----- agreement with independent implementations --------------------------------------------------
@pytest.fixture
def identity_order(monkeypatch):
    """Make every ``torch.randperm`` the identity, so PCGrad visits the losses in a fixed order."""
    monkeypatch.setattr(torch, "randperm", lambda n, *args, **kwargs: torch.arange(n))


@pytest.mark.parametrize("G", MATRICES)
def test_pcgrad_without_shuffling_is_the_fixed_ascending_order(G, identity_order):
    """``shuffle=False`` (the ConFIG paper's order) equals the identity permutation."""
    expected = pcgrad(G)
    monkeypatch_free = pcgrad(G, shuffle=False)
    assert relative_difference(monkeypatch_free, expected) == 0
    assert relative_difference(monkeypatch_free, PCGradOperator().calculate_gradient(G)) < 1e-6


@pytest.mark.parametrize("G", MATRICES)
def test_config_matches_torchjd(G):
    assert relative_difference(config(G), ConFIG()(G)) < 1e-6


@pytest.mark.parametrize("G", MATRICES)
def test_imtlg_matches_torchjd(G):
    assert relative_difference(imtlg(G), IMTLG()(G)) < 1e-6


@pytest.mark.parametrize("G", PAIRS)
def test_pcgrad_matches_torchjd_for_two_gradients(G):
    assert relative_difference(seeded_pcgrad(G), PCGrad()(G)) < 1e-6


@pytest.mark.parametrize("G", MATRICES)
def test_pcgrad_in_a_fixed_order_matches_torchjd_and_conflictfree(G, identity_order):
    ours = pcgrad(G)
    assert relative_difference(ours, PCGrad()(G)) < 1e-6
    assert relative_difference(ours, PCGradOperator().calculate_gradient(G)) < 1e-6


@pytest.mark.parametrize("G", MATRICES)
def test_config_matches_conflictfree_in_float32(G):
    G = G.float()
    assert relative_difference(config(G), ConFIG_update(G)) < 1e-4
    if G.shape[0] == 2:  # the package's closed form for two gradients
        assert relative_difference(config(G), ConFIGOperator().calculate_gradient(G)) < 1e-4


@pytest.mark.parametrize("G", MATRICES)
def test_imtlg_matches_conflictfree(G):
    """The package solves the paper's (D Uᵀ) system, which loses some digits when lengths spread."""
    assert relative_difference(imtlg(G), IMTLGOperator().calculate_gradient(G)) < 1e-4
