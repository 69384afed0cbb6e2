#!/usr/bin/env bash
# Build the asv dashboard over the last commits and take headless Chromium
# screenshots of it, to check that its pages render graphs.
#
#   tools/dashboard_screenshot.sh            # last 3 commits
#
# 1. asv builds fastsoftmax at each of the last N_COMMITS commits (default 3)
#    in its own virtualenvs and runs the suite there, one round each
#    (BENCH, a regex, narrows it: BENCH='time_call' ...);
# 2. asv publish;
# 3. the html is served on 127.0.0.1 and Chromium (Debian: apt-get install
#    chromium) saves index.png and graph.png, the graph page of GRAPH
#    (default forward.Forward.time_call), into SHOT_DIR (default
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
bench="${BENCH:-.}"
graph="${GRAPH:-forward.Forward.time_call}"
shot_dir="${SHOT_DIR:-${TMPDIR:-/tmp}/fastsoftmax-dashboard}"
port="${PORT:-8765}"
mkdir -p "$shot_dir"
work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

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
# One round, one sample per benchmark: enough for a graph, not for decisions.
asv --config "$work/asv.conf.json" run "HASHFILE:$work/hashes" --show-stderr \
    --bench "$bench" -a rounds=1 -a repeat=1 -a warmup_time=0
fi
asv --config "$work/asv.conf.json" publish

# The pages load jQuery, flot, bootstrap ... from CDNs.  Where those cannot
# be reached, serve a copy of the site that loads the same libraries from
# the copies that asv 0.5.1 shipped (its sdist, from PyPI).
site="$here/html"
if ! curl -fsI --max-time 5 https://code.jquery.com/jquery-3.3.1.min.js > /dev/null; then
    echo "CDNs unreachable: using the JavaScript libraries of asv 0.5.1" >&2
    site="$work/site"
    cp -r "$here/html" "$site"
    python -m pip download --quiet --no-deps --no-binary :all: asv==0.5.1 -d "$work/asv"
    tar xzf "$work"/asv/asv-0.5.1.tar.gz -C "$work/asv" asv-0.5.1/asv/www/vendor
    cp -r "$work/asv/asv-0.5.1/asv/www/vendor" "$site/vendor"
    # (the subresource-integrity hashes are those of the CDN builds)
    sed -i \
        -e 's/ integrity="[^"]*"//g' \
        -e 's#https://code.jquery.com/jquery-3.3.1.min.js#vendor/jquery-3.3.1.min.js#' \
        -e 's#https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.min.js#vendor/jquery.flot-0.8.3.min.js#' \
        -e 's#https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.\([a-z]*\).min.js#vendor/jquery.flot-0.8.3.\1.min.js#' \
        -e 's#https://cdn.jsdelivr.net/npm/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js#vendor/jquery.flot.orderBars.js#' \
        -e 's#https://cdnjs.cloudflare.com/ajax/libs/stupidtable/1.0.1/stupidtable.min.js#vendor/stupidtable.js#' \
        -e 's#https://cdnjs.cloudflare.com/ajax/libs/blueimp-md5/2.19.0/js/md5.min.js#vendor/md5.js#' \
        -e 's#https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/js/bootstrap.min.js#vendor/bootstrap-3.1.0.min.js#' \
        -e 's#https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css#vendor/bootstrap-3.1.0.min.css#' \
        "$site"/*.html
fi

python -m http.server --bind 127.0.0.1 --directory "$site" "$port" \
    > "$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 50); do
    curl -fs "http://127.0.0.1:$port/" > /dev/null && break
    sleep 0.2
done

shoot() {  # url, png
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
        --window-size=1400,1000 --virtual-time-budget=15000 \
        --screenshot="$2" "$1" > /dev/null 2>&1
    echo "saved $2"
}
shoot "http://127.0.0.1:$port/" "$shot_dir/index.png"
shoot "http://127.0.0.1:$port/#$graph" "$shot_dir/graph.png"
