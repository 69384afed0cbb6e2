#!/usr/bin/env bash
# Build the asv dashboard over the last commits and take headless Chromium
# screenshots of it, to check that its pages render graphs.
#
#   tools/dashboard_screenshot.sh            # last 3 commits
#
# 1. asv builds fastsoftmax at each of the last N_COMMITS commits (default 3)
#    in its own virtualenvs and runs the suite there with its own settings,
#    rounds interleaved (BENCH, a regex, narrows it; default the quick
#    subset of ../asv_benchmarks/quick.txt);
# 2. ../asv_benchmarks/publish.sh, without the --python=same results;
# 3. tools/offline_screenshots.sh serves the html on 127.0.0.1 with
#    networking off and Chromium (Debian: apt-get install chromium) saves
#    index.png and graph.png, the graph page of GRAPH (default
#    forward.Forward.time_call), into SHOT_DIR (default
#    $TMPDIR/fastsoftmax-dashboard, outside the repository).
# SKIP_RUN=1 skips step 1 and publishes the results already saved.
#
# The dashboard graphs the commits of the configured branches; when HEAD is on
# another branch, that branch is graphed instead (through a copy of
# asv.conf.json in a temporary directory), so a feature branch can be checked
# before it is merged.
set -euo pipefail
# the asv project: asv.conf.json, and results/ and html/ beside it
here="$(cd "$(dirname "$0")/../asv_benchmarks" && pwd)"
cd "$here"

n_commits="${N_COMMITS:-3}"
bench="${BENCH:-$(cat "$here/quick.txt")}"
graph="${GRAPH:-forward.Forward.time_call}"
shot_dir="${SHOT_DIR:-${TMPDIR:-/tmp}/fastsoftmax-dashboard}"
mkdir -p "$shot_dir"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

available="$(git rev-list --count HEAD)"
if [ "$available" -lt "$n_commits" ]; then
    echo "only $available commits: graphing those" >&2
    n_commits="$available"
fi
git rev-list -n "$n_commits" HEAD > "$work/hashes"

branch="$(git rev-parse --abbrev-ref HEAD)"
python - "$here/asv.conf.json" "$work/asv.conf.json" "$branch" <<'EOF'
import json, os, sys
from asv import util
src, dst, branch = sys.argv[1:]
conf = util.load_json(src, js_comments=True)
base = os.path.dirname(src)
for key in ("repo", "benchmark_dir", "env_dir", "results_dir", "html_dir"):
    conf[key] = os.path.normpath(os.path.join(base, conf[key]))
if branch != "HEAD" and branch not in conf["branches"]:
    conf["branches"] = [branch]
with open(dst, "w") as f:
    json.dump(conf, f, indent=4)
EOF

asv machine --yes > /dev/null
if [ -z "${SKIP_RUN:-}" ]; then
# The suite's own timing settings (common.py: 4 rounds in separate
# processes, at least 5 samples each): single samples drew jumps of 10x
# between commits whose code had not changed.
asv --config "$work/asv.conf.json" run "HASHFILE:$work/hashes" --show-stderr \
    --bench "$bench" --interleave-rounds
fi
# Results saved by --python=same runs are of the installed build, not of a
# commit: publishing them would draw a second series beside the real one.
# Publish a copy of results/ without them.
mkdir -p "$work/results"
cp -r "$here/results/." "$work/results/"
find "$work/results" -name 'existing-*.json' -delete
python - "$work/asv.conf.json" "$work/results" <<'EOF2'
import json, sys
path, results = sys.argv[1:]
with open(path) as f:
    conf = json.load(f)
conf["results_dir"] = results
with open(path, "w") as f:
    json.dump(conf, f, indent=4)
EOF2
# publish.sh also points the pages at local copies of their libraries
bash "$here/publish.sh" --config "$work/asv.conf.json"
bash "$here/../tools/offline_screenshots.sh" "$here/html" "$shot_dir" \
    index=index.html "graph=index.html#$graph"
