"""Thread policy (csrc/core/threads.c): team sizes, load-aware cap and its off switch."""
import os
import subprocess
import sys
import time

import pytest

import cnnengine as ce
from cnnengine import _kernels as K

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _teams(code, **env):
    """Run `code` in a fresh process (the policy reads its environment once) and return its stdout."""
    full = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), **env)
    out = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_team_within_request_and_cores():
    cores = ce.num_cores()
    for req in (0, 1, 2, cores, cores + 3):
        t = K.team_size(req)
        assert 1 <= t <= (min(req, cores) if req > 0 else cores)


def test_off_switch_gives_requested_team():
    code = "from cnnengine import _kernels as K\nprint(K.num_cores(), K.team_size(0), K.team_size(1), K.team_size(99))"
    cores, t0, t1, t99 = map(int, _teams(code, CNNENGINE_LOAD_AWARE="0"))
    assert (t0, t1, t99) == (cores, 1, cores)


def test_team_stats_count_calls_and_reset():
    # without the load-aware cap no call is ever capped; the counters are this
    # process's calls since the last reset
    code = ("from cnnengine import _kernels as K\nK.team_stats(True)\n"
            "for _ in range(5): K.team_size(2)\n"
            "a = K.team_stats(True)\nb = K.team_stats()\n"
            "print(a[0], a[1], b[0], b[1], a[2], a[3])")
    calls, capped, calls2, capped2, now, usage = map(float, _teams(code, CNNENGINE_LOAD_AWARE="0"))
    assert (calls, capped, calls2, capped2) == (5, 0, 0, 0)
    assert now == 0 and usage == -1     # off: nothing sampled


def test_team_stats_in_process():
    K.team_stats(True)
    teams = [K.team_size(2) for _ in range(3)]
    calls, capped, now, usage = K.team_stats()
    assert calls == 3 and capped == sum(t < min(2, ce.num_cores()) for t in teams)
    assert now >= 0 and (usage >= 0 or usage == -1)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2
                    or (os.cpu_count() or 1) > 4, reason="needs 2-4 CPUs (starts CPUs+2 busy loops)")
def test_busy_machine_shrinks_team():
    # Pinned to 2 cores, with more busy loops than the machine has CPUs, the
    # smoothed run queue leaves no free core: the team drops to 1.
    code = ("import os, time\nos.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:2])\n"
            "from cnnengine import _kernels as K\nseen = []\nend = time.time() + 5\n"
            "while time.time() < end and (not seen or seen[-1] != 1):\n"
            "    seen.append(K.team_size(2)); time.sleep(0.005)\n"
            "print(K.num_cores(), seen[-1], K.team_stats()[1])")
    burners = [subprocess.Popen([sys.executable, "-c", "while 1: pass"]) for _ in range((os.cpu_count() or 2) + 2)]
    try:
        time.sleep(0.2)
        cores, last, capped = map(int, _teams(code, CNNENGINE_LOAD_AWARE="1"))
    finally:
        for b in burners:
            b.kill()
            b.wait()
    assert cores == 2 and last == 1 and capped >= 1   # the counter saw the cap


@pytest.mark.parametrize("cores, online, now, usage, free", [
    (2, 2, 1, 0.05, 2),   # a sibling's pool spinning down: runnable now, idle over the window
    (2, 2, 0, 1.9, 2),    # load that has stopped (a sibling's turn just ended)
    (2, 2, 3, 1.8, 1),    # sustained load, still runnable
    (2, 2, 1, 0.6, 1),    # one busy neighbour that gets most of a core
    (2, 2, 1, 0.3, 2),    # an intermittent neighbour
    (2, 2, 1, -1, 1),     # no window yet: the run queue alone decides
    (2, 64, 40, 40, 1),   # host-wide counts in a container, scaled to our cores
    (2, 64, 10, 10, 2),
    (4, 4, 10, 10, 1),    # never below one thread
    (8, 8, 2, 3, 6),
])
def test_load_rule_needs_load_now_and_over_the_window(cores, online, now, usage, free):
    assert K.load_free_cores(cores, online, now, usage) == free


# ------------------------------------------------------------- thread pool
# csrc/core/pool.c: every unit runs once, a slot is never held by two
# threads at once, and a job finishes when workers come late or not at all
# (more threads than cores: some are not running when the job opens).

@pytest.mark.parametrize("threads", [1, 2, 3, 8, 64, 100])
@pytest.mark.parametrize("steal", [True, False])
def test_pool_runs_every_unit_once(threads, steal):
    for units in (1, 2, 7, 1000):
        runs, slots, clashes = K.pool_check(threads, units, steal=steal)
        assert clashes == 0
        assert (runs == 1).all()
        assert slots.min() >= 0 and slots.max() < min(threads, 64, units)


def test_pool_without_steal_keeps_ranges_whole():
    # no stealing: the units of one range run under one slot (per-slot state
    # carried from unit to unit stays valid), whoever claimed the range
    cut = [0, 3, 3, 10, 40]
    for _ in range(20):
        runs, slots, clashes = K.pool_check(4, 40, cut=cut, steal=False, slow_every=5, slow_us=50)
        assert clashes == 0 and (runs == 1).all()
        for a, b in zip(cut[:-1], cut[1:]):
            assert len(set(slots[a:b].tolist())) <= 1


def test_pool_slow_units_and_late_workers():
    # slow units everywhere, 6 threads on however many cores: stolen and
    # claimed ranges still run each unit once
    for steal in (True, False):
        runs, slots, clashes = K.pool_check(6, 300, steal=steal, slow_every=7, slow_us=20)
        assert clashes == 0 and (runs == 1).all()


def test_pool_rejects_bad_cut():
    with pytest.raises(ValueError):
        K.pool_check(2, 10, cut=[0, 11, 10])
    with pytest.raises(ValueError):
        K.pool_check(2, 10, cut=[0, 5])


def test_pool_from_python_threads_at_once():
    # several callers: each gets its own pool (or runs inline), none waits on another's job
    import threading
    errors = []

    def work():
        for _ in range(50):
            runs, _, clashes = K.pool_check(3, 200, slow_every=50, slow_us=5)
            if clashes or not (runs == 1).all():
                errors.append((clashes, runs.sum()))

    ts = [threading.Thread(target=work) for _ in range(6)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert not errors


def test_pool_survives_fork():
    # a forked child has none of the parent's workers; its jobs still finish
    K.pool_check(2, 100)
    code = ("import os, sys\nfrom cnnengine import _kernels as K\nK.pool_check(2, 100)\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    r, s, c = K.pool_check(2, 1000, slow_every=100, slow_us=10)\n"
            "    os._exit(0 if c == 0 and (r == 1).all() else 3)\n"
            "_, st = os.waitpid(pid, 0)\nprint(os.waitstatus_to_exitcode(st))")
    assert _teams(code) == ["0"]


def test_core_round_trip_between_the_caller_and_a_worker():
    """The cache-line round trip benchmarks/models.py reports beside its
    2-thread times: positive and under a millisecond (one core: None), the
    pool whole after it; a round count out of range gives None."""
    if K.num_cores() < 2:
        assert K.core_round_trip_ns() is None
        return
    # a worker that no core runs within 100 ms (a loaded CI host) gives None: retry
    got = [ns for ns in (K.core_round_trip_ns(500) for _ in range(5)) if ns is not None]
    assert got and all(0 < ns < 1e6 for ns in got), got
    assert K.core_round_trip_ns(0) is None
    runs, _, clashes = K.pool_check(2, 100)
    assert clashes == 0 and (runs == 1).all()
