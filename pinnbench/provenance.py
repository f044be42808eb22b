"""Where, when and with what a run record was made: the fields a study's README states (machine,
code, date) read from the records themselves, so that two studies' numbers can be told apart."""
from __future__ import annotations

import functools
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

import pinnbench

SOURCE = Path(pinnbench.__file__).resolve().parent.parent
"""The directory holding the package (a git checkout, when run from one)."""


@functools.cache
def code_commit(source: Path = SOURCE) -> str | None:
    """The git commit of the code that runs, with ``-dirty`` when tracked files differ from it;
    None outside a git checkout or without git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(source), *args], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "") if commit else None


@functools.cache
def processor() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else what :mod:`platform` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(device: torch.device) -> dict[str, Any]:
    """The record's provenance: UTC time of writing, code (version, commit), library versions, and
    the machine (CPU model and count, the GPU's name on CUDA, the threads PyTorch uses)."""
    return {
        "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "pinnbench": pinnbench.__version__, "commit": code_commit(), "torch": torch.__version__,
        "python": platform.python_version(), "os": platform.platform(terse=True),
        "cpu": processor(), "cpus": os.cpu_count(), "threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
    }
