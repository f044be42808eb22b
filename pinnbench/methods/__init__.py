"""Training methods: one module per method, each with a YAML in ``configs/method/``."""
