#!/usr/bin/env bash
# Did a change make fastsoftmax slower?  One command:
#
#   asv_benchmarks/regressions.sh                 # main against HEAD, quick subset
#   asv_benchmarks/regressions.sh HEAD^ HEAD      # any two commits
#   FULL=1 asv_benchmarks/regressions.sh          # the whole suite (about an hour)
#
# asv continuous builds both commits in its virtualenvs (env/), runs the
# benchmarks of quick.txt (or all of them) with the suite's settings, rounds
# interleaved between the two, and lists every benchmark that changed by
# more than FACTOR (default 1.1: 10 %) and is statistically significant.
# Exit status 1 when one got slower.  BENCH=regex picks other benchmarks.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
base="${1:-main}" head="${2:-HEAD}"
factor="${FACTOR:-1.1}"
if [ -n "${FULL:-}" ]; then bench="${BENCH:-.}"; else bench="${BENCH:-$(cat quick.txt)}"; fi
asv machine --yes > /dev/null
asv continuous --factor "$factor" --split --interleave-rounds --show-stderr \
    --bench "$bench" "$base" "$head"
