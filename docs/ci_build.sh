#!/usr/bin/env bash
# Build the documentation as CI does: HTML with warnings as errors, then run
# every >>> example (in the pages and in the docstrings autodoc pulls in).
# Needs the package built or installed (pip install -e ".[docs]").
set -euo pipefail
cd "$(dirname "$0")/.."

python -m sphinx -W --keep-going -b html docs docs/_build/html
python -m sphinx -W --keep-going -b doctest docs docs/_build/doctest
# Offline: MathJax is served from the build (sphinx-mathjax-offline); no page
# may load a script or stylesheet from the network.
python tools/check_offline.py docs/_build/html
