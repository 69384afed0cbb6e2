"""Print the Python and NumPy versions that pyproject.toml promises, so that
CI tests exactly those: ``<lowest python> <lowest numpy> <highest python>``
(e.g. ``3.11 1.26.4 3.13``), the lowest from requires-python and the numpy
dependency, the highest from the "Programming Language :: Python :: 3.X"
classifiers."""

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


classified = re.findall(r'"Programming Language :: Python :: (3\.[0-9]+)"', text)
if not classified:
    raise SystemExit("pyproject.toml: no Python version classifiers")
highest = max(classified, key=lambda v: tuple(map(int, v.split("."))))
print(lower_bound(r'requires-python\s*=\s*"'), lower_bound(r'"numpy'), highest)
