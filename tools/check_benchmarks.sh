#!/usr/bin/env bash
# Check the benchmark suite against the installed fastsoftmax (asv's
# --python=same route, no environment is built):
#   1. asv check: every benchmark is discovered and has valid attributes;
#   2. one quick run of every benchmark and parameter combination, nothing
#      saved; any failing benchmark fails this script;
#   3. tests/test_benchmarks.py: each benchmark calls the function it is
#      named after, and every public function has one;
#   4. asv publish (publish.sh) and no remote script or stylesheet in the
#      dashboard's pages.
# About five minutes on two cores.  Run from anywhere: tools/check_benchmarks.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/asv_benchmarks"

if ! python -c "import fastsoftmax" 2>/dev/null; then
    # not installed: use the in-place build of this checkout
    export ASV_PYTHONPATH="$root${ASV_PYTHONPATH:+:$ASV_PYTHONPATH}"
    export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
fi
python -c "import fastsoftmax; fastsoftmax.show_config()"

asv machine --yes > /dev/null
asv check --python=same

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
asv run --python=same --quick --show-stderr --dry-run --durations 5 2>&1 | tee "$log" \
    || status=$?
# asv exits non-zero when a benchmark fails; the log is checked as well, so
# that a failure is caught whatever asv's exit status convention.
if [ "$status" -ne 0 ] \
    || grep -Eq 'asv: benchmark failed|^\[ *[0-9.]+%\] ·+ .*[[:space:]]failed[[:space:]]*$' "$log"; then
    echo "check_benchmarks: a benchmark failed (asv exit status $status)" >&2
    exit 1
fi

cd "$root"
python -m pytest -q tests/test_benchmarks.py
# the dashboard of whatever results/ holds (none in a fresh checkout: the
# pages are then the empty dashboard, their scripts the same)
bash asv_benchmarks/publish.sh > /dev/null
echo "check_benchmarks: benchmark suite OK"
