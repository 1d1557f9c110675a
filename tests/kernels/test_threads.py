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
