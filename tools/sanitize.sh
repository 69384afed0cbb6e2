#!/usr/bin/env bash
# Build fastsoftmax with AddressSanitizer and UndefinedBehaviorSanitizer and
# run the test suite against that build; any sanitizer report fails.
#
#   tools/sanitize.sh                   the whole test suite (as `pytest`)
#   tools/sanitize.sh tests/test_x.py   any pytest arguments: a subset
#
# The build is made in a copy of the checkout (tracked and untracked files,
# not ignored ones) in build/sanitize, or $FASTSOFTMAX_SANITIZE_DIR: the
# normal build and installation are left alone.  Python and NumPy come from
# the active environment (Cython, pytest and the test extras installed).
#
# Python is not instrumented, so the ASan runtime is preloaded (and
# libstdc++ after it, which torch needs when the peer tests import it).
# Leak detection is off: the interpreter keeps memory until exit by design,
# and the test suite checks the resident size itself.  Every report goes to
# a log file per process (subprocesses included) and fails the script;
# UBSan stops at the first error, as ASan does.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${FASTSOFTMAX_SANITIZE_DIR:-$root/build/sanitize}"
cc="${CC:-cc}"

rm -rf "$build"
mkdir -p "$build"
python - "$root" "$build" <<'EOF'
import os, shutil, subprocess, sys

root, build = sys.argv[1:]
names = subprocess.run(["git", "-C", root, "ls-files", "-z", "--cached", "--others",
                        "--exclude-standard"], capture_output=True, check=True).stdout
for name in filter(None, names.decode().split("\0")):
    src, dst = os.path.join(root, name), os.path.join(build, name)
    if os.path.isfile(src):
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(src, dst)
EOF

flags="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g"
(cd "$build" && CFLAGS="$flags" LDFLAGS="$flags" python setup.py -q build_ext --inplace \
    > "$build/build.log" 2>&1) || { cat "$build/build.log"; exit 1; }

asan="$("$cc" -print-file-name=libasan.so)"
stdcxx="$("$cc" -print-file-name=libstdc++.so)"
for lib in "$asan" "$stdcxx"; do
    [ -e "$lib" ] || { echo "sanitize: $lib not found (is $cc GCC?)" >&2; exit 1; }
done
logs="$build/reports"
mkdir -p "$logs"
export LD_PRELOAD="$asan $stdcxx${LD_PRELOAD:+ $LD_PRELOAD}"
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:log_path=$logs/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$logs/ubsan"
export PYTHONPATH="$build${PYTHONPATH:+:$PYTHONPATH}"
cd "$build"

python -c "import fastsoftmax, sys; sys.exit(not fastsoftmax.__file__.startswith('$build'))" \
    || { echo "sanitize: the sanitized build is not the one imported" >&2; exit 1; }
status=0
python -m pytest -q -p no:cacheprovider "$@" || status=$?

if compgen -G "$logs/*" > /dev/null; then
    cat "$logs"/* >&2
    echo "sanitize: sanitizer reports above ($(ls "$logs" | wc -l) files in $logs)" >&2
    exit 1
fi
[ "$status" -eq 0 ] || { echo "sanitize: tests failed (pytest status $status)" >&2; exit "$status"; }
echo "sanitize: no sanitizer report"
