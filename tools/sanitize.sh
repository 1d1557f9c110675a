#!/usr/bin/env bash
# The C kernels under AddressSanitizer + UndefinedBehaviorSanitizer: build in
# place with CNNENGINE_SANITIZE, run tests/kernels and an engine subset with
# the runtimes preloaded (python itself is not instrumented), count reports.
#
#   tools/sanitize.sh [pytest args...]     (default: the subset below)
#
# What ASan sees: every plain load and store of the C code, the unmasked
# AVX loads/stores included (GCC compiles _mm256_loadu_ps to one); the masked
# and gathered AVX ones are builtins it does not instrument (tools/valgrind.sh
# checks those on AVX2).
#
# Exit status: 0 when no sanitizer report was written, 1 otherwise.
# Afterwards the in-place extension is the sanitized one: rebuild the normal
# way with  python setup.py build_ext --inplace --force
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
OUT=${SANITIZE_OUT:-build/sanitize}
rm -rf "$OUT" && mkdir -p "$OUT"

# separate objects (build/asan), --force: setuptools does not track flags
CNNENGINE_SANITIZE=address,undefined "$PY" setup.py build_ext --inplace --force -t build/asan \
    >"$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 2; }

ASAN_LIB=$(gcc -print-file-name=libasan.so)
UBSAN_LIB=$(gcc -print-file-name=libubsan.so)
[ -e "$ASAN_LIB" ] || { echo "libasan.so not found (gcc -print-file-name)"; exit 2; }

if [ $# -eq 0 ]; then
    set -- tests/kernels tests/runtime/test_model.py tests/runtime/test_layout.py \
        tests/runtime/test_threads.py tests/runtime/test_nan_model.py tests/importers/test_hostile.py
fi

# detect_leaks=0: CPython keeps its objects to the end by design.
# PYTHONMALLOC=malloc: Python's own allocations through ASan too.
LD_PRELOAD="$ASAN_LIB:$UBSAN_LIB" \
ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:log_path=$PWD/$OUT/asan" \
UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$PWD/$OUT/ubsan" \
PYTHONMALLOC=malloc \
    "$PY" -m pytest -q -p no:cacheprovider -n "${SANITIZE_JOBS:-2}" "$@" 2>&1 | tee "$OUT/pytest.log" | tail -5
rc=${PIPESTATUS[0]}

reports=$(cat "$OUT"/asan.* "$OUT"/ubsan.* 2>/dev/null |
          grep -cE "ERROR: AddressSanitizer|runtime error:|ERROR: UndefinedBehaviorSanitizer" || true)
echo "sanitize: pytest exit $rc, $reports sanitizer report(s) (logs in $OUT/)"
[ "$reports" -eq 0 ] && [ "$rc" -eq 0 ]
