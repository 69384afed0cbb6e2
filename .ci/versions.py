"""Print the lowest Python and NumPy versions that pyproject.toml allows,
``<python> <numpy>`` (e.g. ``3.9 1.25``), so that CI tests exactly what
the metadata promises."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

with open(os.path.join(ROOT, "pyproject.toml")) as f:
    text = f.read()


def lower_bound(pattern):
    match = re.search(pattern + r"\s*>=\s*([0-9][0-9.]*)", text)
    if match is None:
        raise SystemExit(f"pyproject.toml: no lower bound for {pattern}")
    return match.group(1)


print(lower_bound(r'requires-python\s*=\s*"'), lower_bound(r'"numpy'))
