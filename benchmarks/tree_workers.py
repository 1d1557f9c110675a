"""Worker processes of one benchmark script, one per source tree, for A/B
comparisons of builds (bench_direct.py, bench_pointwise.py)."""
import os
import subprocess
import sys


def start(script, trees, threads, repeat):
    """Start `script --worker` once per tree (PYTHONPATH and cwd = the tree);
    returns (processes, the FMA peak each reported on its first line)."""
    procs = []
    for tree in trees:
        env = dict(os.environ, PYTHONPATH=tree)
        procs.append(subprocess.Popen([sys.executable, os.path.abspath(script), "--worker",
                                       "--threads", str(threads), "--repeat", str(repeat)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                      env=env, cwd=tree))
    return procs, [float(p.stdout.readline().split()[1]) for p in procs]
