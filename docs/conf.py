"""Sphinx configuration of the pinnbench documentation (furo theme, MyST Markdown pages).

Built by ``make docs`` with warnings as errors and nitpicky references; every command the pages show
is checked by tests/test_docs_commands.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the package and problems/ from this checkout, for autodoc

project = "pinnbench"
author = "the pinnbench authors"
copyright = "2026, the pinnbench authors"

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.viewcode"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3  # [text](page.md#a-heading) links resolve, and are checked

html_theme = "furo"
html_title = "pinnbench"
html_static_path: list[str] = []

autodoc_typehints = "none"  # signatures as written; the docstrings state the maths and the types
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}

nitpicky = True
# Types from other libraries: documented in their own projects (this build is offline, no intersphinx).
nitpick_ignore_regex = [
    (r"py:.*", r"(torch|np|numpy|pd|pandas|omegaconf|hydra|typing|collections|pathlib|argparse|dataclasses)(\..*)?"),
    (r"py:.*", r"(Tensor|DictConfig|Path|Any|Callable|Sequence|Iterable|Field|Batch|Figure)"),
]
