"""The torchjd adapter reproduces torchjd's own aggregators and explains bad input."""

import pytest
import torch

from torchjd import aggregation

from pinnbench.errors import ConfigError
from pinnbench.methods.torchjd import TorchJD, TorchJDOptions, available_aggregators


@pytest.mark.parametrize("name, kwargs", [("UPGrad", {}), ("MGDA", {}), ("DualProj", {}), ("AlignedMTL", {}),
                                          ("Mean", {}), ("TrimmedMean", {"trim_number": 1}),
                                          ("Krum", {"n_byzantine": 1, "n_selected": 2})])
def test_adapter_equals_torchjd_on_random_matrices(name, kwargs):
    params = [torch.zeros(7, dtype=torch.float64)]
    method = TorchJD(TorchJDOptions(aggregator=name, kwargs=kwargs), 5, params)
    reference = getattr(aggregation, name)(**kwargs)
    generator = torch.Generator().manual_seed(1)
    for _ in range(10):
        G = torch.randn(5, 7, generator=generator, dtype=torch.float64)
        torch.testing.assert_close(method.aggregate(G), reference(G), rtol=1e-9, atol=1e-12)


def test_unknown_aggregator_lists_the_available_ones():
    with pytest.raises(ConfigError) as error:
        TorchJDOptions(aggregator="Nope").validate(3)
    assert "Nope" in str(error.value) and "UPGrad" in str(error.value) and "MGDA" in str(error.value)
    assert {"UPGrad", "MGDA", "DualProj", "AlignedMTL", "ConFIG"} <= set(available_aggregators())


def test_bad_kwargs_name_the_signature():
    with pytest.raises(ConfigError, match="TrimmedMean"):
        TorchJDOptions(aggregator="TrimmedMean", kwargs={}).validate(3)


def test_missing_torchjd_names_the_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_torchjd(name, *args, **kwargs):
        if name.startswith("torchjd"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torchjd)
    with pytest.raises(ConfigError, match=r'pinnbench\[torchjd\]'):
        available_aggregators()
