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


def test_walltime_adam_takes_the_seconds_of_the_adam_run_of_the_same_setting(tmp_path):
    """``budget.seconds=adam``: each walltime run trains for the seconds its seed's Adam run took."""
    from pinnbench import records
    from tests.conftest import TINY
    from tests.test_sweeps import pinnbench_run

    small = ("problem.sizes.cpu.iterations=6", *TINY)
    first = pinnbench_run("-m", "method=adam", "seed=0,1", *small, sweep_dir=tmp_path)
    assert first.returncode == 0, first.stderr
    second = pinnbench_run("-m", "method=config", "seed=0,1,2", "budget=walltime", "budget.seconds=adam", *small,
                           sweep_dir=tmp_path)
    assert second.returncode == 1  # seed 2 has no Adam run: that job fails, the others complete
    problem_dir = tmp_path / "burgers-cpu"
    for seed in (0, 1):
        adam = records.read_summary(next(problem_dir.glob(f"adam-n3-it6-seed{seed}-*")))
        ours = records.read_summary(next(problem_dir.glob(f"config-n3-walladam-seed{seed}-*")))
        assert ours["status"] == "completed" and ours["budget_from"] == "adam"
        assert ours["budget_amount"] == adam["seconds"] and ours["seconds"] >= adam["seconds"]
        assert ours["adam_run"].endswith(f"adam-n3-it6-seed{seed}-" + ours["adam_run"].rsplit("-", 1)[1])
    failed = records.read_summary(next(problem_dir.glob("config-n3-walladam-seed2-*")))
    assert failed["status"] == "failed" and "adam-n3-it6-seed2" in failed["error"] and "does not exist" in failed["error"]
    again = pinnbench_run("-m", "method=config", "seed=0", "budget=walltime", "budget.seconds=adam", *small,
                          sweep_dir=tmp_path)
    assert "1 skipped (1 already completed)" in again.stdout, again.stdout


def test_walltime_seconds_must_be_a_positive_number_or_adam():
    from pinnbench.budget import BudgetConfig

    assert BudgetConfig(kind="walltime", seconds="12.5").seconds == 12.5
    assert BudgetConfig(kind="walltime", seconds="adam").seconds == "adam"
    for bad in ("fast", -1, None):
        with pytest.raises(ConfigError, match=r"budget\.seconds=.* must be a positive number of seconds, or adam"):
            BudgetConfig(kind="walltime", seconds=bad)


def test_a_process_clock_counts_cpu_time_not_waiting():
    wall, process = Clock(), Clock(kind="process")
    wall.start(), process.start()
    time.sleep(0.3)  # waiting costs no CPU time
    started = time.process_time()
    while time.process_time() - started < 0.2:  # busy: CPU time passes on both clocks
        pass
    wall.pause(), process.pause()
    assert wall.seconds >= 0.5 and 0.19 <= process.seconds < 0.35


def test_the_process_clock_is_refused_on_a_gpu_and_unknown_clocks_are_named():
    from pinnbench.settings import typed
    from pinnbench.budget import BudgetConfig

    with pytest.raises(ConfigError, match=r"budget\.clock='cpu' is not a clock; allowed: wall, process"):
        BudgetConfig(clock="cpu")
    assert typed(BudgetConfig, {"kind": "walltime", "seconds": 3, "clock": "process"}).clock == "process"


def test_exponential_decay_is_smooth_or_a_staircase():
    from pinnbench.budget import exponential_decay, scheduled_lr
    from pinnbench.settings import ScheduleConfig

    assert exponential_decay(0, 1e-3, 0.9, 1000) == 1e-3
    assert exponential_decay(1500, 1e-3, 0.9, 1000) == pytest.approx(1e-3 * 0.9**1.5, rel=1e-12)
    assert exponential_decay(1999, 1e-3, 0.9, 1000, staircase=True) == pytest.approx(9e-4, rel=1e-12)
    assert exponential_decay(2000, 1e-3, 0.9, 1000, staircase=True) == pytest.approx(8.1e-4, rel=1e-12)
    smooth = ScheduleConfig(kind="exponential")
    assert scheduled_lr(smooth, 40000, 1.0, 0.01, 1e-3, 1e-4) == pytest.approx(1e-3 * 0.9**40, rel=1e-12)
    cosine = ScheduleConfig()
    assert scheduled_lr(cosine, 5, 0.5, 0.0, 1e-3, 1e-4) == pytest.approx(cosine_with_warmup(0.5, 0.0, 1e-3, 1e-4))


@pytest.mark.parametrize("key, value, words", [("kind", "linear", "schedule.kind='linear'"),
                                               ("rate", 1.5, "schedule.rate=1.5"), ("steps", 0, "schedule.steps=0")])
def test_a_bad_schedule_is_a_clear_error(key, value, words):
    from pinnbench.errors import ConfigError
    from pinnbench.settings import ScheduleConfig

    with pytest.raises(ConfigError, match=words.replace(".", r"\.")):
        ScheduleConfig(**{key: value})
