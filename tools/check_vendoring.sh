#!/usr/bin/env bash
# Vendor fastsoftmax into a scratch scikit-style library exactly as
# docs/vendoring.rst says, and check the result; once with setuptools and
# once with meson-python, each in a fresh virtual environment.
#
#   tools/check_vendoring.sh                 # both recipes
#   tools/check_vendoring.sh meson           # one of them
#   KEEP=1 tools/check_vendoring.sh          # keep the scratch folder
#   WHEELS=DIR tools/check_vendoring.sh      # build fastsoftmax's wheel there once
#
# The page's steps are taken from the page itself: every code block after a
# ".. vendoring-file: <recipe> <path>" comment is written to <path> in the
# scratch library, every block after ".. vendoring-run: <recipe>" is run
# there (recipe "common" belongs to both), in page order, with FASTSOFTMAX
# naming this checkout.  Among them are the copy of the fastsoftmax folder
# (which brings its own build files, fastsoftmax/meson.build and
# fastsoftmax/_vendor.py, that the page shows by literalinclude), the
# host's few build lines, the build, the install and the page's own check
# (the vendored copy's self-check and doctests, and the library's
# predict_proba example).  Then, beyond the page: the installed library's
# predict_proba against NumPy, and the vendored copy side by side with an
# installed fastsoftmax (built from this checkout) in one process.
#
# pytest -m vendoring runs this script (tests/test_vendoring.py).
#
# Needs python3 (or PYTHON=...), a C compiler and PyPI or a wheel cache for
# the build requirements (Cython, setuptools, meson-python, meson, ninja).
# About 2 minutes on two cores with a warm pip cache.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
RECIPES=${*:-setuptools meson}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/fastsoftmax-vendoring.XXXXXX")
if [[ -z ${KEEP:-} ]]; then trap 'rm -rf "$WORK"' EXIT; else echo "scratch folder: $WORK"; fi
WHEELS=${WHEELS:-$WORK/wheels}
START=$SECONDS

# --- the page, as steps: one line per block (kind, recipe, path, file) -------
mkdir -p "$WORK/steps"
"$PYTHON" - "$REPO/docs/vendoring.rst" "$WORK/steps" <<'EOF'
import os, re, sys, textwrap

page, out = sys.argv[1], sys.argv[2]
lines = open(page).read().splitlines()
steps, i = [], 0
while i < len(lines):
    m = re.match(r"\.\. vendoring-(file|run): (\S+)(?: (\S+))?\s*$", lines[i])
    i += 1
    if not m:
        continue
    while not lines[i].startswith(".. code-block::"):
        i += 1
    i += 1
    while re.match(r"\s+:[\w-]+:", lines[i]):  # the directive's options
        i += 1
    body = []
    while i < len(lines) and (not lines[i].strip() or lines[i].startswith(" ")):
        body.append(lines[i])
        i += 1
    text = textwrap.dedent("\n".join(body)).strip("\n") + "\n"
    name = os.path.join(out, f"{len(steps):02d}")
    with open(name, "w") as f:
        f.write(text)
    steps.append("\t".join([m[1], m[2], m[3] or "-", name]))
assert steps, "no vendoring steps found in " + page
with open(os.path.join(out, "manifest"), "w") as f:
    f.write("\n".join(steps) + "\n")
EOF

# --- fastsoftmax itself, as a wheel, for the side-by-side check --------------
upstream_wheel() {
    if ! ls "$WHEELS"/fastsoftmax-*.whl >/dev/null 2>&1; then
        mkdir -p "$WORK/upstream"
        cp -r "$REPO"/{setup.py,pyproject.toml,README.md,LICENSE,fastsoftmax} "$WORK/upstream/"
        find "$WORK/upstream/fastsoftmax" \( -name '*.so' -o -name '*.pyd' -o -name '_loops.c' \
            -o -name __pycache__ \) -prune -exec rm -rf {} +
        python -m pip wheel --quiet --no-deps "$WORK/upstream" -w "$WHEELS"
    fi
    ls "$WHEELS"/fastsoftmax-*.whl
}

for recipe in $RECIPES; do
    echo "=== $recipe: the steps of docs/vendoring.rst"
    t0=$SECONDS
    project="$WORK/$recipe/mylib-project"
    mkdir -p "$project"
    "$PYTHON" -m venv "$WORK/$recipe/venv"
    # shellcheck disable=SC1091
    . "$WORK/$recipe/venv/bin/activate"
    python -m pip install --quiet --upgrade pip
    python -m pip install --quiet numpy

    while IFS=$'\t' read -r kind step_recipe path step; do
        [[ $step_recipe == common || $step_recipe == "$recipe" ]] || continue
        if [[ $kind == file ]]; then
            echo "--- write $path"
            mkdir -p "$(dirname "$project/$path")"
            cp "$step" "$project/$path"
        else
            echo "--- run:"
            sed 's/^/    /' "$step"
            (cd "$project" && FASTSOFTMAX="$REPO" bash -euo pipefail "$step")
        fi
    done < "$WORK/steps/manifest"

    echo "=== $recipe: beyond the page"
    (cd "$WORK" && python - <<'EOF'
import importlib.util

import numpy as np

from mylib import SoftmaxRegression

assert importlib.util.find_spec("fastsoftmax") is None, "fastsoftmax is installed"
rng = np.random.default_rng(0)
coef, intercept, X = rng.standard_normal((5, 8)), rng.standard_normal(5), rng.standard_normal((100, 8))
z = X @ coef.T + intercept
expected = np.exp(z - z.max(axis=1, keepdims=True))
expected /= expected.sum(axis=1, keepdims=True)
np.testing.assert_allclose(SoftmaxRegression(coef, intercept).predict_proba(X), expected, rtol=1e-12)
print("predict_proba agrees with NumPy")
EOF
    )
    python -m pip install --quiet "$(upstream_wheel)"
    (cd "$WORK" && python - <<'EOF'
import numpy as np

import fastsoftmax
from mylib._vendored import fastsoftmax as vendored

assert fastsoftmax.__file__ != vendored.__file__ and fastsoftmax._loops is not vendored._loops
x = np.random.default_rng(0).standard_normal((64, 1000))
np.testing.assert_allclose(vendored.softmax(x), fastsoftmax.softmax(x), rtol=1e-13)
# each copy has its own dispatch table
vendored._runtime.set_simd("scalar")
assert vendored.get_config()["simd"] == "scalar"
assert fastsoftmax.get_config()["simd"] == fastsoftmax.get_config()["simd_available"]
np.testing.assert_allclose(vendored.softmax(x), fastsoftmax.softmax(x), rtol=1e-13)
print("side by side with", fastsoftmax.__file__)
EOF
    )
    deactivate
    echo "=== $recipe: OK in $((SECONDS - t0)) s"
done
echo "vendoring check passed ($RECIPES) in $((SECONDS - START)) s"
