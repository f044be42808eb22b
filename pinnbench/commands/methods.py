"""``pinnbench methods``: every available method, its description and its options."""

from __future__ import annotations

import dataclasses

from omegaconf import OmegaConf

from pinnbench.cli import add_command, config_dir, parser
from pinnbench.errors import ConfigError
from pinnbench.settings import typed_options


def describe_methods() -> list[dict]:
    """One entry per ``configs/method/*.yaml``: name, description, options with their defaults."""
    entries = []
    for path in sorted((config_dir() / "method").glob("*.yaml")):
        node = OmegaConf.load(path)
        entry = {"name": path.stem, "description": "", "options": {}}
        try:
            cls, options = typed_options("method", node)
        except ConfigError as exc:
            entry["description"] = f"(unavailable: {exc})"
        else:
            entry["description"] = cls.description
            entry["options"] = {f.name: getattr(options, f.name) for f in dataclasses.fields(options)
                                if f.name != "name"}
            if path.stem == "torchjd":
                from pinnbench.methods.torchjd import available_aggregators

                try:
                    entry["aggregators"] = sorted(available_aggregators())
                except ConfigError as exc:
                    entry["description"] += f" (unavailable: {exc})"
        entries.append(entry)
    return entries


@add_command("methods", "list the available methods with their options")
def methods(argv: list[str]) -> None:
    parser("methods", "List every available method (pinnbench run method=NAME) and its options.").parse_args(argv)
    for entry in describe_methods():
        print(f"{entry['name']:<10} {entry['description']}")
        for key, value in entry["options"].items():
            print(f"{'':<12}method.{key}={value}")
        if entry.get("aggregators"):
            print(f"{'':<12}aggregators: {', '.join(entry['aggregators'])}")
