"""Subcommands besides ``run``: each module registers itself with :func:`pinnbench.cli.add_command`."""
