"""DCGD as a method: two backward passes (residual; the other losses summed) and the variant's
aggregator of that pair, equal to the aggregator of the full per-loss gradient matrix."""

import pytest
import torch

import pinnbench.methods.dcgd as dcgd
from pinnbench import aggregators
from pinnbench.methods.base import gradient_matrix
from pinnbench.methods.dcgd import DCGD, DCGDOptions
from tests.methods.toy import ToyLosses, flat_gradient, small_network


@pytest.mark.parametrize("variant", sorted(aggregators.DCGD_VARIANTS))
@pytest.mark.parametrize("n_losses", [2, 3, 4])
def test_dcgd_steps_along_its_variant_of_the_residual_and_the_summed_others(monkeypatch, variant, n_losses):
    model = small_network()
    params = list(model.parameters())
    losses = ToyLosses(model, n_losses)
    passes = []
    monkeypatch.setattr(dcgd, "gradient_matrix", lambda values, params, out=None: passes.append(len(values)) or
                        gradient_matrix(values, params, out))
    method = DCGD(DCGDOptions(variant=variant), n_losses, params)
    method.step(losses)
    assert passes == [2]  # whatever the number of losses
    G = gradient_matrix(losses.each(), params)
    expected = aggregators.DCGD_VARIANTS[variant](G)
    torch.testing.assert_close(flat_gradient(params), expected, rtol=1e-12, atol=1e-14)
    pair = torch.stack([G[0], G[1:].sum(dim=0)])
    assert (pair @ flat_gradient(params) >= -1e-12).all()


def test_dcgd_runs_are_labelled_by_variant():
    assert [DCGDOptions(variant=v).label for v in ("center", "avg", "proj")] == ["dcgd-center", "dcgd-avg",
                                                                                 "dcgd-proj"]
