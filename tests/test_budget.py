import math
import time

import pytest

from pinnbench.budget import Budget, BudgetConfig, Clock, cosine_with_warmup
from pinnbench.errors import ConfigError


def test_schedule_warms_up_linearly_then_decays_on_a_cosine_to_the_final_rate():
    lr, final, warm = 1e-3, 1e-4, 0.01
    assert cosine_with_warmup(0.0, warm, lr, final) == 0.0
    assert cosine_with_warmup(warm / 2, warm, lr, final) == pytest.approx(lr / 2)
    assert cosine_with_warmup(warm, warm, lr, final) == pytest.approx(lr)
    middle = warm + (1 - warm) / 2
    assert cosine_with_warmup(middle, warm, lr, final) == pytest.approx((lr + final) / 2)
    assert cosine_with_warmup(1.0, warm, lr, final) == pytest.approx(final)
    after = [cosine_with_warmup(p, warm, lr, final) for p in [warm + i * 0.05 for i in range(20)]]
    assert all(a >= b for a, b in zip(after, after[1:]))


@pytest.mark.parametrize("iterations, warmup_iterations", [(30000, 100), (1000, 10), (50, 1)])
def test_warmup_is_min_of_100_iterations_and_one_percent(iterations, warmup_iterations):
    budget = Budget(BudgetConfig("iterations", iterations), iterations)
    assert budget.warmup_fraction() * iterations == pytest.approx(warmup_iterations)


def test_walltime_progress_and_exhaustion_follow_the_clock():
    budget = Budget(BudgetConfig("walltime", seconds=10.0), iterations=1000)
    assert budget.progress(5, 2.5) == pytest.approx(0.25)
    assert not budget.exhausted(10**6, 9.99)
    assert budget.exhausted(1, 10.0)


@pytest.mark.parametrize("kwargs", [dict(kind="iterations", iterations=0), dict(kind="iterations", iterations=-3),
                                    dict(kind="walltime", seconds=None), dict(kind="walltime", seconds=-1.0),
                                    dict(kind="walltime", seconds=math.inf), dict(kind="epochs")])
def test_bad_budgets_are_rejected(kwargs):
    with pytest.raises(ConfigError, match="budget"):
        BudgetConfig(**kwargs)


def test_paused_clock_does_not_count():
    clock = Clock()
    clock.start()
    time.sleep(0.05)
    clock.pause()
    time.sleep(0.3)
    counted = clock.seconds
    assert 0.05 <= counted < 0.3
    clock.start()
    time.sleep(0.01)
    assert clock.seconds > counted
