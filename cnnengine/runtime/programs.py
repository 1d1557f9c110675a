"""Programs: runs of consecutive compiled steps bound once per arena to
buffers whose address never changes, each run by one C call (the CPU
backend's _kernels.Program, csrc/core/program.c) instead of one Python call
per step (the loop, the runner closure and the Cython call cost ~1.5 us a
step; MNASNet-0.5 has 53 steps of 20-50 us).

A step joins a program where its runner has bind() (backend/cpu/kernels.py),
it has an arena slot (or makes only a view), and every input is a plan
constant or a value whose buffer is fixed for the arena: a bound step's
output, or the arena view of a step that runs alone (a stem conv reading
the graph input). Graph inputs and values made per run never are. Binding
checks every size; a step that fails to bind runs alone and raises at run
time as before. CNNENGINE_PROGRAM=0 turns programs off.
"""
import os

from ..errors import Error


def enabled():
    return os.environ.get("CNNENGINE_PROGRAM", "1") != "0"


class Program:
    """Steps lo..hi-1 of a plan bound to one arena."""
    __slots__ = ("prog", "ks", "ins", "values", "free")

    def __init__(self, prog, ks, ins, values, free):
        self.prog = prog        # the backend's program over the steps with a kernel
        self.ks = ks            # their step indices
        self.ins = ins          # their bound inputs (error messages)
        self.values = values    # (name, value) the steps after read from env
        self.free = free        # values made before the program that its steps free

    def run(self, env, threads, seconds=None):
        """seconds: None, or float64 array (one per kernel step) that gets
        each step's wall time inside the C loop (profiling)."""
        if seconds is None:
            self.prog.run(threads)
        else:
            self.prog.run_timed(threads, seconds)
        env.update(self.values)
        for name in self.free:
            env.pop(name, None)

    def failed_step(self, plan):
        """(node, inputs) of the step that raised."""
        i = self.prog.failed
        return plan.steps[self.ks[i]].node, self.ins[i]


def bind_programs(plan, arena):
    """The arena's schedule: [(Program or None, lo, hi)] covering every step
    in order (None: steps lo..hi-1 run one Python call each); None where no
    program binds (the executor then runs step by step)."""
    be = plan.backend
    if not enabled() or not be.host_values:
        return None
    fixed = dict(plan.run_static)
    schedule, group = [], []

    def close(end):
        prog = _program(plan, be, group) if any(b is not None for _, b, _, _ in group) else None
        if group:
            schedule.append((prog, group[0][0], end))
        group.clear()

    for k, step in enumerate(plan.steps):
        bind = getattr(step.runner, "bind", None)
        node = step.node
        outs = [o for o in node.outputs if o]
        bound = None
        if bind is not None and all((not i) or i in fixed for i in node.inputs):
            ins = [fixed[i] if i else None for i in node.inputs]
            try:
                if step.slot is not None:
                    bound = bind(ins, arena[k])
                elif step.kernel == "shape":      # a view: no buffer of its own, no kernel
                    bound = bind(ins, None)
            except (Error, TypeError, ValueError):
                bound = None          # it runs alone and raises at run time as before
        if bound is not None:
            b, value = bound
            values = value if type(value) is tuple else (value,)
            fixed.update(zip(node.outputs, values))
            group.append((k, b, ins, dict(zip(node.outputs, values))))
            continue
        close(k)
        if schedule and schedule[-1][0] is None:
            schedule[-1] = (None, schedule[-1][1], k + 1)
        else:
            schedule.append((None, k, k + 1))
        if bind is not None and step.kernel == "C" and step.slot is not None and outs == node.outputs[:1]:
            fixed[outs[0]] = arena[k]     # the runner writes its arena view
    close(len(plan.steps))
    if not any(p is not None for p, _, _ in schedule):
        return None
    return schedule


def _program(plan, be, group):
    made, freed = {}, set()
    for k, _, _, values in group:
        made.update(values)
        freed.update(plan.steps[k].free)
    kernels = [(k, b, ins) for k, b, ins, _ in group if b is not None]
    prog = be.program([b for _, b, _ in kernels])
    if prog is None:
        return None
    values = [(name, v) for name, v in made.items() if name and name not in freed]
    return Program(prog, [k for k, _, _ in kernels], [ins for _, _, ins in kernels], values,
                   [name for name in freed if name not in made])
