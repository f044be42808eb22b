"""``pinnbench bench [overrides]``: time training iterations at paper size, ours against the straightforward step."""

from __future__ import annotations

from pinnbench.cli import add_command


@add_command("bench", "time training iterations at paper size against a straightforward implementation")
def bench(argv: list[str]) -> None:
    if any(a in ("-h", "--help") for a in argv):
        print("usage: pinnbench bench [problem=P] ['bench.methods=[adam,config,mconfig]'] [bench.iterations=N]\n"
              "                       [bench.rounds=R] [bench.out=FILE.json] [run keys: n_losses, dtype, compile, ...]\n\n"
              "Times every method's training iteration at the problem's paper size (network and points),\n"
              "ours and a straightforward implementation side by side, and prints the ratio table.\n"
              "Keys and their defaults: configs/bench.yaml; what is measured: pinnbench/bench.py.")
        return
    from pinnbench.bench import bench as run_bench

    run_bench(argv)
