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

from pinnbench.aggregators import DCGD_VARIANTS, balancing_weights, config, dcgd_avg, dcgd_center, dcgd_proj, imtlg, pcgrad

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


AGGREGATORS = {"config": config, "pcgrad": seeded_pcgrad, "imtlg": imtlg,
               **{f"dcgd-{variant}": rule for variant, rule in DCGD_VARIANTS.items()}}
DCGD = [f"dcgd-{variant}" for variant in DCGD_VARIANTS]


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


@pytest.mark.parametrize("aggregate, G", battery({"config": MATRICES, "pcgrad": PAIRS, **{n: PAIRS for n in DCGD}}))
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


# ----- DCGD: the dual cone of (g_r, Σ others), and hand-made cases ---------------------------------
def dual_cone_pair(G: Tensor) -> Tensor:
    """[2, d]: the residual's gradient and the sum of the others, the two gradients DCGD sees."""
    return torch.stack([G[0], G[1:].sum(dim=0)])


@pytest.mark.parametrize("aggregate, G", battery({n: MATRICES for n in DCGD}))
def test_dcgd_update_lies_in_the_dual_cone_of_the_residual_and_the_others(aggregate, G):
    """gᵀg_r ≥ 0 and gᵀ(Σ_{i≥1} g_i) ≥ 0 (not for every g_i alone when k ≥ 3)."""
    pair = dual_cone_pair(G)
    g = aggregate(G)
    assert (pair @ g >= -1e-12 * pair.norm(dim=1) * g.norm()).all()
    torch.testing.assert_close(aggregate(pair), g, rtol=1e-12, atol=1e-14 * G.norm())


@pytest.mark.parametrize("aggregate, G", battery({n: MATRICES for n in DCGD}))
def test_dcgd_ignores_the_order_of_the_non_residual_losses(aggregate, G):
    reversed_others = torch.cat([G[:1], G[1:].flip(0)])
    torch.testing.assert_close(aggregate(reversed_others), aggregate(G), rtol=1e-12, atol=1e-14 * G.norm())


def t(*rows) -> Tensor:
    return torch.tensor(rows, dtype=torch.float64)


# (residual row(s), expected center, avg, proj): by hand from the formulas in pinnbench.aggregators
DCGD_CASES = {
    # g_r = (1, 0), g_b = (−3, 4), |g_b| = 5: g = (−2, 4) has gᵀg_r = −2 < 0 (outside the cone);
    # center ½(1 + 5)((1, 0) + (−0.6, 0.8)) = (1.2, 2.4); proj g_b − (−3/1) g_r = (0, 4);
    # avg ½[(g_r + (3/25) g_b) + (0, 4)] = ½[(0.64, 0.48) + (0, 4)] = (0.32, 2.24).
    "conflicting": (t([1, 0], [-3, 4]), t(1.2, 2.4), t(0.32, 2.24), t(0, 4)),
    # the same with the roles swapped: now gᵀg_b < 0 and proj keeps g_r made orthogonal to g_b
    "conflicting-residual-wins": (t([-3, 4], [1, 0]), t(1.2, 2.4), t(0.32, 2.24), t(0, 4)),
    # three losses: boundary + initial = (−1, 1) + (−2, 3) = (−3, 4), as in the first case
    "conflicting-three-losses": (t([1, 0], [-1, 1], [-2, 3]), t(1.2, 2.4), t(0.32, 2.24), t(0, 4)),
    # orthogonal g_r = (2, 0), g_b = (0, 1): in the cone, avg and proj keep g = (2, 1);
    # center ½(2 + 1)((1, 0) + (0, 1)) = (1.5, 1.5)
    "orthogonal": (t([2, 0], [0, 1]), t(1.5, 1.5), t(2, 1), t(2, 1)),
    # aligned g_r = (3, 4), g_b = (6, 8): every variant returns the sum (9, 12)
    "aligned": (t([3, 4], [6, 8]), t(9, 12), t(9, 12), t(9, 12)),
    # opposite g_r = (2, 0, 0), g_b = (−1, 0, 0): the cone is the plane x = 0, every variant gives 0
    "opposite": (t([2, 0, 0], [-1, 0, 0]), t(0, 0, 0), t(0, 0, 0), t(0, 0, 0)),
    # exactly cancelling g_r = −g_b: zero
    "cancelling": (t([1, 1], [-1, -1]), t(0, 0), t(0, 0), t(0, 0)),
}


@pytest.mark.parametrize("G, center, avg, proj", DCGD_CASES.values(), ids=DCGD_CASES.keys())
def test_dcgd_variants_on_hand_made_cases(G, center, avg, proj):
    for rule, expected in ((dcgd_center, center), (dcgd_avg, avg), (dcgd_proj, proj)):
        torch.testing.assert_close(rule(G), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("G", PAIRS)
def test_dcgd_center_equals_the_authors_closed_form(G):
    """The authors scale the bisector c = u_r + u_b by cᵀ(g_r + g_b) / (2 (1 + cos(g_r, g_b)))."""
    g_r, g_b = G
    c = g_r / g_r.norm() + g_b / g_b.norm()
    cosine = g_r @ g_b / (g_r.norm() * g_b.norm())
    torch.testing.assert_close(dcgd_center(G), (c @ (g_r + g_b)) / (2 * (1 + cosine)) * c, rtol=1e-10, atol=0)


@pytest.mark.parametrize("G", PAIRS)
def test_dcgd_proj_is_the_euclidean_projection_on_the_dual_cone(G):
    """p = dcgd_proj(G) is the projection of g = g_r + g_b on the cone K = {v : vᵀg_r ≥ 0, vᵀg_b ≥ 0}:
    p ∈ K, (g − p)ᵀp = 0 and (g − p)ᵀv ≤ 0 for every v ∈ K. As g − p lies in the plane of g_r and
    g_b, it suffices to check v on the rays that span K in that plane when the pair conflicts, each
    gradient made orthogonal to the other (both are in K whatever the pair)."""
    g_r, g_b = G
    g = g_r + g_b
    p = dcgd_proj(G)
    assert (G @ p >= -1e-12 * G.norm(dim=1) * p.norm()).all()
    assert abs(float((g - p) @ p)) <= 1e-10 * float(g.norm() ** 2)
    for v in (g_r - (g_r @ g_b) / (g_b @ g_b) * g_b, g_b - (g_r @ g_b) / (g_r @ g_r) * g_r):
        assert (G @ v >= -1e-12 * G.norm(dim=1) * v.norm()).all()
        assert float((g - p) @ v) <= 1e-10 * float(g.norm() * v.norm())


def test_balancing_weights_bring_each_scale_to_the_mean():
    # scales (1, 2, 3): mean 2, w = 2 / (s + 2e-5)
    torch.testing.assert_close(balancing_weights(t(1, 2, 3)), t(2 / (1 + 2e-5), 2 / (2 + 2e-5), 2 / (3 + 2e-5)))
    torch.testing.assert_close(balancing_weights(t(5, 5)), t(1, 1) / (1 + 1e-5))
    torch.testing.assert_close(balancing_weights(t(0, 0)), t(1, 1))
    with pytest.raises(ValueError):
        balancing_weights(t([1, 2]))
