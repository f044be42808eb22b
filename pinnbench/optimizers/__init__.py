"""Optimisers: one module per optimiser, each with a YAML in ``configs/optimizer/``.

A method writes its update direction into ``p.grad``; the run's optimiser takes the step. The two
are chosen independently (``method=config optimizer=soap``: ConFIG's direction, SOAP's step),
except for methods that take their own steps (see ``Method.check_optimizer``).
"""
