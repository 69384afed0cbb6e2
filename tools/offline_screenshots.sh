#!/usr/bin/env bash
# Serve a static site on 127.0.0.1 and save headless Chromium screenshots of
# some of its pages with networking off, to show that they render from the
# site's own files alone (no CDN).
#
#   tools/offline_screenshots.sh SITE_DIR SHOT_DIR NAME=PAGE [NAME=PAGE ...]
#   tools/offline_screenshots.sh docs/_build/html /tmp/shots math=math.html
#
# saves SHOT_DIR/NAME.png for each PAGE (a path under the site, with any
# #fragment).  Where the user may create a network namespace (root, or
# unprivileged user namespaces) the server and Chromium run in a new one that
# has only a loopback interface; elsewhere Chromium is pointed at a proxy
# that does not exist (127.0.0.1:9), through which every address but
# loopback would go.  Needs chromium (Debian: apt-get install chromium).
set -euo pipefail
if [ "${1:-}" != "--inside" ] && unshare --net --map-root-user true 2> /dev/null; then
    exec unshare --net --map-root-user bash "$0" --inside "$@"
fi
if [ "${1:-}" = "--inside" ]; then
    shift
    ip link set lo up
    echo "offline_screenshots: in a network namespace with loopback only" >&2
else
    echo "offline_screenshots: no network namespace here; remote addresses go to a dead proxy" >&2
fi
site="$1" shot_dir="$2"
shift 2
port="${PORT:-8766}"
mkdir -p "$shot_dir"
python3 -m http.server --bind 127.0.0.1 --directory "$site" "$port" > /dev/null 2>&1 &
server_pid=$!
trap 'kill "$server_pid" 2> /dev/null || true' EXIT
for _ in $(seq 50); do
    python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/')" \
        2> /dev/null && break
    sleep 0.2
done
for shot in "$@"; do
    name="${shot%%=*}" page="${shot#*=}"
    # virtual time: the page's scripts (MathJax, the dashboard's graphs) run
    # to completion before the picture is taken
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
        --proxy-server=127.0.0.1:9 --window-size=1400,1600 --virtual-time-budget=20000 \
        --screenshot="$shot_dir/$name.png" "http://127.0.0.1:$port/$page" > /dev/null 2>&1
    echo "saved $shot_dir/$name.png"
done
