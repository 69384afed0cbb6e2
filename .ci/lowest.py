"""Print the lowest Python and NumPy versions that pyproject.toml allows,
``<python> <numpy>`` (e.g. ``3.9 1.25``), so that CI tests exactly what
the metadata promises."""

import os
import re
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
    project = tomllib.load(f)["project"]


def lower_bound(spec):
    match = re.search(r">=\s*([0-9][0-9.]*)", spec)
    if match is None:
        raise SystemExit(f"no lower bound in {spec!r}")
    return match.group(1)


numpy = next(d for d in project["dependencies"] if re.match(r"numpy\b", d))
print(lower_bound(project["requires-python"]), lower_bound(numpy))
