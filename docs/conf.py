"""Sphinx configuration for the fastsoftmax documentation.

autodoc imports the package from the repository root, so build the
extension first (``pip install -e .`` or ``python setup.py build_ext
--inplace``).
"""

import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)

import fastsoftmax  # noqa: E402

project = "fastsoftmax"
author = "The fastsoftmax developers"
copyright = "the fastsoftmax developers"
version = release = fastsoftmax.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
    # MathJax 3 copied into _static/mathjax/ and loaded from there: the
    # formulas render without a network (the default loads it from a CDN)
    "sphinx-mathjax-offline",
    "numpydoc",
]

exclude_patterns = ["_build", "scripts"]
root_doc = "index"
html_theme = "alabaster"
html_title = f"fastsoftmax {release}"

# numpydoc renders the Parameters/Returns/Examples sections; the class pages
# list their methods through autodoc's :members: rather than autosummary.
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
autodoc_member_order = "bysource"
autodoc_typehints = "none"

# The doctest builder runs every ``>>>`` example: in these pages and in the
# docstrings that autodoc pulls in.
doctest_global_setup = """
import numpy as np
import fastsoftmax as fs
"""
doctest_default_flags = (
    __import__("doctest").ELLIPSIS
    | __import__("doctest").NORMALIZE_WHITESPACE
    | __import__("doctest").DONT_ACCEPT_TRUE_FOR_1
)
