"""Sphinx configuration of the graphtickets documentation (built by ``bash bootstrap.sh docs``).

Everything is built offline: no intersphinx, no downloads. The gallery (``examples/``) runs
every ``plot_*.py`` script and turns it into a page, a ``.py`` and a ``.ipynb`` download.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE / "_ext"))
os.environ.setdefault("OMP_NUM_THREADS", "1")  # the gallery's scripts: small tensors, no thread pools
os.environ.setdefault("MPLBACKEND", "agg")

import logging  # noqa: E402
import warnings  # noqa: E402

import graphtickets  # noqa: E402

# numpydoc drops a docstring section it does not know with only a Python warning: fail instead
warnings.filterwarnings("error", message="Unknown section", category=UserWarning)
# the examples' output shows what they print, not the library's progress log
logging.getLogger("graphtickets").setLevel(logging.WARNING)

project = "graphtickets"
author = "the graphtickets authors"
copyright = "2026, the graphtickets authors"
release = graphtickets.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "cli_help",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "**.ipynb_checkpoints", "sg_execution_times.rst"]
root_doc = "index"
default_role = "code"

# -- API reference ------------------------------------------------------------------------
autosummary_generate = True
autosummary_ignore_module_all = False  # a module's public names are its __all__
autodoc_typehints = "none"  # numpydoc docstrings say the types
autodoc_member_order = "bysource"
autodoc_default_options = {"inherited-members": False}
numpydoc_show_class_members = False  # the class template lists members itself
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# -- Gallery ------------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": [str(ROOT / "examples")],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"/plot_",
    "download_all_examples": True,
    "within_subsection_order": "ExampleTitleSortKey",
    "remove_config_comments": True,
    "show_memory": False,
    "min_reported_time": 1,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
    "capture_repr": ("_repr_html_", "__repr__"),
    "doc_module": ("graphtickets",),
    "backreferences_dir": None,
    "write_computation_times": False,
}

# -- HTML ---------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"graphtickets {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_show_sourcelink = False
html_theme_options = {
    "sidebar_hide_name": False,
    "navigation_with_keys": True,
}
