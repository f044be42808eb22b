"""``pinnbench tune [OVERRIDES]``: tune every method of a setting with the same budget (docs/tuning.md)."""

from __future__ import annotations

import sys

from pinnbench.cli import add_command


def print_spaces() -> None:
    """Every method's and optimiser's search space, and the shared learning-rate range."""
    from omegaconf import OmegaConf

    from pinnbench.cli import config_dir
    from pinnbench.search import dimension, group_space

    tune = OmegaConf.load(config_dir() / "tune.yaml").tune
    lr = dimension("lr", tune.lr, "configs/tune.yaml lr")
    print(f"every method: {lr.describe()}, final_lr = {tune.final_lr_ratio} * lr")
    for group in ("method", "optimizer"):
        for path in sorted((config_dir() / group).glob("*.yaml")):
            dims = group_space(group, OmegaConf.load(path))
            print(f"{group} {path.stem}: " + ("; ".join(d.describe() for d in dims) if dims else "learning rate only"))


@add_command("tune", "tune every method with the same budget; select on validation (tune.* settings, --spaces)")
def tune(argv: list[str]) -> None:
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__.strip() + "\n\nSettings: tune.trials, tune.sampler=qmc|tpe, tune.objective=validation|label_free, "
              "tune.workers, tune.evaluate, tune.trainers=[adam,config+soap], hydra.sweep.dir; "
              "--spaces prints every search space.")
        return
    if argv and argv[0] == "--spaces":
        print_spaces()
        return
    from pinnbench.tune import tune as run_tune

    sys.exit(run_tune(argv))
