"""``python -m pinnbench`` is the ``pinnbench`` command."""

from pinnbench.cli import main

main()
