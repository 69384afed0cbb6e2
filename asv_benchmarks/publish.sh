#!/usr/bin/env bash
# asv publish, then make the dashboard work offline: asv's pages load
# jQuery, flot, bootstrap, md5 and stupidtable from CDNs; this points them at
# copies in html/vendor/ (the same versions, as shipped in asv 0.5.1's sdist,
# fetched once by pip into a cache) and checks that no remote script or
# stylesheet is left.
#
#   asv_benchmarks/publish.sh                 # results/ -> html/
#   asv_benchmarks/publish.sh --config FILE   # another asv.conf.json
#
# The cache is $XDG_CACHE_HOME/fastsoftmax-asv-vendor (~/.cache by default);
# copy it there to publish on a machine without a package index.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
asv publish "$@"
html="$(python - "$@" <<'PY'
import os, sys
from asv import util
conf = "asv.conf.json"
if "--config" in sys.argv:
    conf = sys.argv[sys.argv.index("--config") + 1]
c = util.load_json(conf, js_comments=True)
print(os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(conf)), c["html_dir"])))
PY
)"

cache="${XDG_CACHE_HOME:-$HOME/.cache}/fastsoftmax-asv-vendor"
if [ ! -f "$cache/jquery-3.3.1.min.js" ]; then
    tmp="$(mktemp -d)"
    python -m pip download --quiet --no-deps --no-binary :all: asv==0.5.1 -d "$tmp"
    tar xzf "$tmp"/asv-0.5.1.tar.gz -C "$tmp" asv-0.5.1/asv/www/vendor
    mkdir -p "$cache"
    cp "$tmp"/asv-0.5.1/asv/www/vendor/* "$cache/"
    rm -rf "$tmp"
fi
mkdir -p "$html/vendor"
cp "$cache"/* "$html/vendor/"
# (the subresource-integrity hashes are those of the CDN builds: dropped)
sed -i \
    -e 's/ integrity="[^"]*"//g' -e 's/ crossorigin="[^"]*"//g' \
    -e 's#https://code.jquery.com/jquery-3.3.1.min.js#vendor/jquery-3.3.1.min.js#' \
    -e 's#https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.min.js#vendor/jquery.flot-0.8.3.min.js#' \
    -e 's#https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.\([a-z]*\).min.js#vendor/jquery.flot-0.8.3.\1.min.js#' \
    -e 's#https://cdn.jsdelivr.net/npm/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js#vendor/jquery.flot.orderBars.js#' \
    -e 's#https://cdnjs.cloudflare.com/ajax/libs/stupidtable/1.0.1/stupidtable.min.js#vendor/stupidtable.js#' \
    -e 's#https://cdnjs.cloudflare.com/ajax/libs/blueimp-md5/2.19.0/js/md5.min.js#vendor/md5.js#' \
    -e 's#https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/js/bootstrap.min.js#vendor/bootstrap-3.1.0.min.js#' \
    -e 's#https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css#vendor/bootstrap-3.1.0.min.css#' \
    "$html"/*.html
python "$here/../tools/check_offline.py" "$html"
