#!/usr/bin/env bash
# Whether the suite's timing settings flag real regressions and nothing
# else, on this machine, against the installed fastsoftmax (--python=same):
#
#   1. noise: the quick subset (quick.txt) twice on the same build; asv
#      compare --factor 1.1 must list no change;
#   2. slowdown: the same build with FASTSOFTMAX_SIMD=scalar (the portable C
#      path, several times slower than AVX2 / AVX-512); asv compare must flag
#      the time_call and ratio benchmarks as slower.
#
#   asv_benchmarks/noise_check.sh            # about 10 minutes on two cores
#   BENCH=regex FACTOR=1.1 asv_benchmarks/noise_check.sh
#
# asv keys results by commit, so the second run is saved under a twin
# commit: a commit object with HEAD's tree (git commit-tree, on no branch),
# the same code under another hash.  The results go to a temporary
# directory, never to results/, so that the dashboard shows no
# --python=same series.  Exit status 1 when either check fails.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
bench="${BENCH:-$(cat quick.txt)}"
factor="${FACTOR:-1.1}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python - asv.conf.json "$work/asv.conf.json" "$work/results" <<'PY'
import json, os, sys
from asv import util
src, dst, results = sys.argv[1:]
conf = util.load_json(src, js_comments=True)
base = os.path.dirname(os.path.abspath(src))
for key in ("repo", "benchmark_dir", "env_dir", "html_dir"):
    conf[key] = os.path.normpath(os.path.join(base, conf[key]))
conf["results_dir"] = results
with open(dst, "w") as f:
    json.dump(conf, f, indent=4)
PY

head="$(git rev-parse HEAD)"
twin="$(git commit-tree "HEAD^{tree}" -p HEAD -m "the tree of $head")"
slow="$(git commit-tree "HEAD^{tree}" -p "$twin" -m "the tree of $head, scalar")"
run() {  # commit, then environment assignments
    local commit="$1"; shift
    env "$@" asv --config "$work/asv.conf.json" run --python=same --set-commit-hash "$commit" \
        --bench "$bench" --show-stderr > "$work/run-$commit.log" 2>&1 \
        || { cat "$work/run-$commit.log"; exit 1; }
}
asv machine --yes > /dev/null
python -c "import fastsoftmax; fastsoftmax.show_config()" | grep -E "^simd|^openmp"
run "$head" FASTSOFTMAX_NOISE=1
run "$twin" FASTSOFTMAX_NOISE=2
run "$slow" FASTSOFTMAX_SIMD=scalar

compare() {
    asv --config "$work/asv.conf.json" compare --factor "$factor" --split "$@"
}
status=0
echo "== noise: the same build twice ($head, $twin): no change may be listed"
compare "$head" "$twin" | tee "$work/noise.txt"
if grep -Eq '^\| *[+-] ' "$work/noise.txt"; then
    echo "noise_check: two runs of one build differ by more than the factor $factor" >&2
    status=1
fi
echo "== slowdown: FASTSOFTMAX_SIMD=scalar ($slow): must be flagged"
compare "$head" "$slow" | tee "$work/slow.txt"
if ! grep -Eq '^\| *\+ ' "$work/slow.txt"; then
    echo "noise_check: the scalar path was not flagged as slower" >&2
    status=1
fi
exit "$status"
