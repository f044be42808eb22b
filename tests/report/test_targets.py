"""Time to target, by hand, on the synthetic study of conftest.write_study.

Its histories evaluate test_mse at iteration 0 (0.25), 100 (√(E/4)) and 200 (the final E), 5 ms
per Adam iteration and 8 ms per ConFIG iteration. Adam's final errors 0.03, 0.04, 0.05 make the
default target 0.04: seeds 0 and 1 reach it at iteration 200 (1.0 s), seed 2 never. ConFIG (0.01,
0.02, 0.03) is at 0.05–0.087 at iteration 100 and reaches it at 200 (1.6 s); its diverged seed 3
(1e6) never does; its half-written seed 4 has no history and does not count.
"""

import math

import numpy as np
import pandas as pd
import pytest

from pinnbench.errors import ConfigError
from pinnbench.report.collect import collect_runs, read_history
from pinnbench.report.targets import parse_targets, setting_targets, target_table, times_to_target

BURGERS = ("burgers", "cpu", 3, "iterations", 200.0, "")


@pytest.fixture
def timed(study):
    runs = collect_runs([study])
    histories = {d: read_history(d) for d in runs["run_dir"]}
    goals, notes = setting_targets(runs, "test_mse", {})
    return runs, times_to_target(runs, {d: h for d, h in histories.items() if h is not None}, "test_mse", goals), notes


def test_default_target_is_adams_median_final_error(timed):
    runs, _, notes = timed
    goals, _ = setting_targets(runs, "test_mse", {})
    assert goals[BURGERS] == pytest.approx(0.04)
    assert math.isnan(goals[("kovasznay", "cpu", 2, "iterations", 200.0, "")])
    assert any("kovasznay" in n and "no target" in n for n in notes)
    goals, _ = setting_targets(runs, "test_mse", {"kovasznay": 0.6})
    assert goals[("kovasznay", "cpu", 2, "iterations", 200.0, "")] == 0.6 and goals[BURGERS] == pytest.approx(0.04)


def test_each_run_reaches_the_target_at_its_first_evaluation_below_it(timed):
    _, runs, _ = timed
    burgers = runs[runs["problem"].eq("burgers") & runs["budget"].eq("iterations")].set_index(["method", "seed"])
    assert burgers.loc[("adam", 0), ["iterations_to_target", "seconds_to_target"]].tolist() == [200, 1.0]
    assert burgers.loc[("adam", 2), "seconds_to_target"] == math.inf
    assert burgers.loc[("config", 1), ["iterations_to_target", "seconds_to_target"]].tolist() == [200, 1.6]
    assert burgers.loc[("config", 3), "iterations_to_target"] == math.inf  # diverged: never
    assert math.isnan(burgers.loc[("config", 4), "seconds_to_target"])  # no history, not finished


def test_target_table_medians_reach_and_speed_up(timed):
    table = target_table(timed[1]).set_index(["problem", "budget", "method"])
    adam, config = table.loc[("burgers", "iterations", "adam")], table.loc[("burgers", "iterations", "config")]
    assert (adam["n_runs"], adam["n_reached"], adam["reached"]) == (3, 2, pytest.approx(2 / 3))
    assert adam["median_iterations_to_target"] == 200 and adam["median_seconds_to_target"] == 1.0
    assert (config["n_runs"], config["n_reached"]) == (4, 3)  # seeds 0–2 at 1.6 s, seed 3 never
    assert config["median_seconds_to_target"] == 1.6 and config["speedup_vs_adam"] == pytest.approx(1.0 / 1.6)
    assert adam["speedup_vs_adam"] == 1.0
    assert ("kovasznay", "iterations", "config") not in table.index  # no target there


def test_medians_count_never_as_infinite():
    timed = pd.DataFrame({"problem": "p", "size": "cpu", "n_losses": 3, "budget": "iterations", "budget_amount": 10.0,
                          "variant": "", "method": ["adam"] * 3 + ["m"] * 3, "target": 0.1,
                          "iterations_to_target": [10, 20, np.inf, 5, np.inf, np.inf],
                          "seconds_to_target": [1.0, 2.0, np.inf, 0.5, np.inf, np.inf],
                          "included": True, "seconds": 3.0})
    table = target_table(timed, given={"p"}).set_index("method")
    assert table.loc["adam", "median_seconds_to_target"] == 2.0
    assert table.loc["m", "median_seconds_to_target"] == np.inf and table.loc["m", "n_reached"] == 1
    assert table.loc["m", "speedup_vs_adam"] == 0.0


def four_seeds(adam_to_target, m_to_target, adam_seconds=(4.0, 5.0, 6.0, 7.0)):
    return pd.DataFrame({"problem": "p", "size": "cpu", "n_losses": 3, "budget": "walltime", "budget_amount": 7.0,
                         "variant": "", "method": ["adam"] * 4 + ["m"] * 4, "target": 0.1, "included": True,
                         "iterations_to_target": [*adam_to_target, *m_to_target],
                         "seconds_to_target": [*adam_to_target, *m_to_target],
                         "seconds": [*adam_seconds, 7.0, 7.0, 7.0, 7.0]})


def test_with_the_default_target_adam_is_timed_where_it_ends():
    # the target is Adam's median final E: two of four seeds end above it, so Adam's median seconds to it
    # are +inf; the reference is the median of its training seconds, (5 + 6) / 2 = 5.5
    table = target_table(four_seeds([3.0, 6.0, np.inf, np.inf], [1.0, 1.0, 2.0, np.inf])).set_index("method")
    assert table.loc["adam", "median_seconds_to_target"] == np.inf
    assert table.loc["m", "median_seconds_to_target"] == 1.5
    assert table.loc["m", "speedup_vs_adam"] == pytest.approx(5.5 / 1.5)
    assert table.loc["adam", "speedup_vs_adam"] == 1.0  # the reference itself


def test_with_a_given_target_that_adam_mostly_misses_there_is_no_speed_up():
    timed = four_seeds([3.0, np.inf, np.inf, np.inf], [1.0, 1.0, 2.0, np.inf])
    table = target_table(timed, given={"p"}).set_index("method")
    assert np.isnan(table.loc["m", "speedup_vs_adam"]) and table.loc["m", "median_seconds_to_target"] == 1.5
    table = target_table(four_seeds([3.0, 3.0, 5.0, np.inf], [1.0, 1.0, 2.0, np.inf]), given={"p"}).set_index("method")
    assert table.loc["m", "speedup_vs_adam"] == pytest.approx(4.0 / 1.5)  # Adam's median to target: (3 + 5) / 2


def test_targets_are_parsed_per_problem():
    assert parse_targets(["burgers=1e-3", "kovasznay=0.5"]) == {"burgers": 1e-3, "kovasznay": 0.5}
    assert parse_targets(None) == {}
    for bad in ("burgers", "=1", "burgers=-1", "burgers=x", "burgers=inf"):
        with pytest.raises(ConfigError, match="PROBLEM=VALUE"):
            parse_targets([bad])


def test_a_method_whose_median_run_never_reaches_the_target_shows_never():
    from pinnbench.report.targets import target_view

    table = pd.DataFrame([{**dict(zip(["problem", "size", "n_losses", "budget", "budget_amount", "variant"], BURGERS)),
                           "method": m, "target": 0.04, "n_runs": 3, "n_reached": r, "reached": r / 3,
                           "median_iterations_to_target": it, "median_seconds_to_target": s, "speedup_vs_adam": x}
                          for m, r, it, s, x in [("adam", 2, 200, 1.0, 1.0), ("lra", 0, math.inf, math.inf, 0.0),
                                                 ("config", 3, 100, 0.5, 2.0)]])
    view = target_view(table).set_index("method")["speed-up vs Adam"]
    assert view.to_dict() == {"adam": "1.00×", "lra": "never", "config": "2.00×"}
