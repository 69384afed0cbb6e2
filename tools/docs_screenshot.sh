#!/usr/bin/env bash
# Build the HTML documentation and screenshot its math and performance pages
# with networking off (tools/offline_screenshots.sh): the formulas must show
# as typeset math, not raw TeX, with MathJax served from the build.
#
#   tools/docs_screenshot.sh                 # -> $TMPDIR/fastsoftmax-docs/
#   SHOT_DIR=/tmp/shots SKIP_BUILD=1 tools/docs_screenshot.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
shot_dir="${SHOT_DIR:-${TMPDIR:-/tmp}/fastsoftmax-docs}"
cd "$root"
if [ -z "${SKIP_BUILD:-}" ]; then
    python -m sphinx -q -b html docs docs/_build/html
fi
python tools/check_offline.py docs/_build/html
bash tools/offline_screenshots.sh docs/_build/html "$shot_dir" \
    math=math.html accuracy=accuracy.html performance=performance.html
