"""PDE problems: one module per PDE, each with a YAML in ``configs/problem/``."""
