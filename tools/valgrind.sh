#!/usr/bin/env bash
# One valgrind memcheck run of a small model's inference (lenet5, batch 2:
# the plan-making first run and three planned runs), Python's own noise
# suppressed (tools/valgrind-python.supp). Valgrind has no AVX-512: the AVX2
# kernels run. Exit 1 on any memcheck error.
set -uo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind not installed (apt-get install -y valgrind)"; exit 2; }
# the interpreter itself, not a wrapper such as a pyenv shim (valgrind would
# check the wrapper and let the child run unchecked)
PY=$("${PYTHON:-python}" -c 'import sys; print(sys.executable)')
CNNENGINE_ISA=avx2 OMP_NUM_THREADS=2 PYTHONMALLOC=malloc \
valgrind --tool=memcheck --error-exitcode=1 --num-callers=30 \
    --suppressions=tools/valgrind-python.supp "$PY" -c '
import numpy as np
import cnnengine as ce
m = ce.load("lenet5")
x = np.random.default_rng(0).standard_normal((2, 1, 32, 32)).astype(np.float32)
ys = [m.run(x) for _ in range(4)]          # the first run makes the plan (reference ops)
assert all(np.array_equal(y, ys[1]) for y in ys[1:]) and np.isfinite(ys[0]).all()
print("valgrind run: ok", ce.active_isa(), ys[1].shape)
'
