"""One Model shared by 8 Python threads, each with its own inputs, while the
C kernels run their OpenMP teams: every thread gets what a single-threaded
run gives for its inputs, and nothing deadlocks."""
import threading
import time

import numpy as np

import cnnengine as ce

from .onnx_builders import residual_net

THREADS, RUNS = 8, 200


def test_shared_model_from_8_threads():
    model = ce.load(residual_net(np.random.default_rng(0), batch="N"))
    rng = np.random.default_rng(1)
    shape = [d if isinstance(d, int) else 1 for d in model.inputs[0].shape]
    # batch 1 and 2 alternate, so two plans (and their arenas) are shared too
    inputs = [[rng.standard_normal([1 + (t + r) % 2] + shape[1:]).astype(np.float32) for r in range(RUNS)]
              for t in range(THREADS)]
    for x in inputs[0][:2]:          # the first run at a signature is the reference evaluation
        model.run(x)
    want = [[model.run(x) for x in xs] for xs in inputs]          # single-threaded, planned
    got = [[None] * RUNS for _ in range(THREADS)]
    errors = []
    start = threading.Barrier(THREADS)

    def work(t):
        try:
            start.wait()
            for r, x in enumerate(inputs[t]):
                got[t][r] = model.run(x)
        except BaseException as exc:   # reported below, with the thread
            errors.append((t, exc))

    workers = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(THREADS)]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert not any(w.is_alive() for w in workers), "deadlock: a thread did not finish in 120 s"
    assert not errors, errors
    for t in range(THREADS):
        for r in range(RUNS):
            np.testing.assert_array_equal(got[t][r], want[t][r], err_msg=f"thread {t} run {r}")
    assert time.perf_counter() - t0 < 60
