"""Liveness-based buffer assignment for the compiled steps of a plan.

Each compiled step's output gets a slot of an arena; a slot is reused once
every value that lives in it (the output and any views of it, e.g. a
Reshape) has had its last use. Values that are graph outputs, or views of
them, never live in a slot: they are handed to the caller. Best-fit reuse,
growing the largest free slot when none is big enough (capacities are only
planned here; arenas allocate them once).
"""
import numpy as np


def plan_memory(steps, shapes, aliases, static, outputs):
    def root(v):
        while v in aliases:
            v = aliases[v]
        return v

    last = {}
    for idx, step in enumerate(steps):
        for name in step.node.inputs:
            if name and name not in static:
                r = root(name)
                last[r] = idx
                last[name] = idx
        for name in step.node.outputs:
            if name:
                last.setdefault(root(name), idx)
                last.setdefault(name, idx)
    pinned = {root(o) for o in outputs}

    # Which values each step frees (for the executor's env), by root liveness.
    free_at = [[] for _ in steps]
    for name, idx in last.items():
        if name in outputs:
            continue
        free_at[max(idx, last.get(root(name), idx))].append(name)
    for step, names in zip(steps, free_at):
        step.free = tuple(names)

    capacities, free_slots, slot_of = [], [], {}
    releases = {}
    for idx, step in enumerate(steps):
        out = step.node.outputs[0] if step.node.outputs else ""
        if step.runner is not None and out and root(out) == out and out not in pinned:
            need = int(np.prod(shapes[out])) if shapes[out] else 1
            slot = _take(capacities, free_slots, need)
            slot_of[out] = slot
            step.slot = (slot, tuple(shapes[out]))
            releases.setdefault(last.get(out, idx), []).append(slot)
        for slot in releases.pop(idx, []):
            free_slots.append(slot)
    return capacities


def _take(capacities, free_slots, need):
    fitting = [s for s in free_slots if capacities[s] >= need]
    if fitting:
        slot = min(fitting, key=lambda s: capacities[s])
    elif free_slots:
        slot = max(free_slots, key=lambda s: capacities[s])
        capacities[slot] = need
    else:
        capacities.append(need)
        return len(capacities) - 1
    free_slots.remove(slot)
    return slot
