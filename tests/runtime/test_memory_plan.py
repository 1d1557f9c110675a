"""The memory plan's Concat in place (DenseNet's dense blocks): parts
written straight into the longest Concat's slot, the Concats are views of
its prefixes; same results as ONNX Runtime, with and without the blocked
layout, at batch 1 (in place) and batch 2 (copies)."""
import numpy as np
import pytest
from onnx import TensorProto, helper

import cnnengine as ce
from tests.conftest import assert_close
from tests.runtime.onnx_builders import init, ort_run


def dense_block(rng, c0=16, growth=8, layers=3, hw=(6, 5)):
    """stem -> a0; layer i: Concat(a0, f1..f_{i-1}) -> ReLU -> 1x1 conv -> f_i;
    the block's Concat -> 1x1 conv, plus a 1x1 conv of a0 read after it."""
    inits = [init(rng, "w0", c0, 3, 3, 3)]
    nodes = [helper.make_node("Conv", ["x", "w0"], ["a0"], name="stem", pads=[1, 1, 1, 1])]
    parts = ["a0"]
    for i in range(1, layers + 1):
        c = c0 + growth * (i - 1)
        inits.append(init(rng, f"w{i}", growth, c, 1, 1))
        nodes += [helper.make_node("Concat", list(parts), [f"cat{i}"], name=f"cat{i}", axis=1),
                  helper.make_node("Relu", [f"cat{i}"], [f"r{i}"], name=f"relu{i}"),
                  helper.make_node("Conv", [f"r{i}", f"w{i}"], [f"f{i}"], name=f"conv{i}")]
        parts.append(f"f{i}")
    c = c0 + growth * layers
    inits += [init(rng, "wt", 8, c, 1, 1), init(rng, "wa", 8, c0, 1, 1)]
    nodes += [helper.make_node("Concat", list(parts), ["block"], name="block", axis=1),
              helper.make_node("Conv", ["block", "wt"], ["t"], name="transition"),
              helper.make_node("Conv", ["a0", "wa"], ["u"], name="late_a0"),
              helper.make_node("Add", ["t", "u"], ["y"], name="add")]
    g = helper.make_graph(nodes, "dense", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["N", 3, *hw])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, ["N", 8, *hw])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def _concat_slots(model, x):
    plan = model._exec.plan_for({"x": x})
    return [s.slot for s in plan.steps if s.node.op == "Concat"], plan


@pytest.mark.parametrize("layout,c0,growth", [("nchwc", 16, 8), ("nchw", 16, 8), ("nchw", 5, 3)])
def test_dense_block_concats_run_in_place(layout, c0, growth, rng, monkeypatch):
    if layout == "nchwc" and ce.detected_isa() == "scalar":
        pytest.skip("the blocked layout needs AVX2")
    monkeypatch.setenv("CNNENGINE_LAYOUT", layout)
    net = dense_block(rng, c0=c0, growth=growth)
    m = ce.load(net)
    x1 = rng.standard_normal((1, 3, 6, 5)).astype(np.float32)
    slots, plan = _concat_slots(m, x1)
    assert len(slots) == 4
    assert len({s[0] for s in slots}) == 1 and all(s[2] == 0 for s in slots), slots
    # the parts sit back to back in that slot
    master = slots[0][0]
    parts = [s.slot for s in plan.steps if s.slot and s.slot[0] == master and s.node.op != "Concat"]
    offs = sorted(p[2] for p in parts)
    assert offs[0] == 0 and len(offs) == 4
    for _ in range(2):                     # a second run reuses the arena
        assert_close(m.run(x1), ort_run(net, x1), rtol=1e-4)
    x2 = rng.standard_normal((2, 3, 6, 5)).astype(np.float32)
    assert len({s[0] for s in _concat_slots(m, x2)[0]}) > 1   # batch 2: copies
    assert_close(m.run(x2), ort_run(net, x2), rtol=1e-4)


def test_captures_inside_an_in_place_block(rng):
    net = dense_block(rng)
    m = ce.load(net)
    x = rng.standard_normal((1, 3, 6, 5)).astype(np.float32)
    y, got = m.run(x, capture=["cat2", "conv2", "block"])
    assert_close(y, ort_run(net, x), rtol=1e-4)
    assert_close(got["block"][:, :got["cat2"].shape[1]], got["cat2"], rtol=0)
    assert_close(got["block"][:, 24:32], got["conv2"], rtol=0)


def test_a_part_in_two_unrelated_concats_is_copied(rng):
    """a0 in two Concats that are not prefixes of one another: one group at
    most takes it; results stay right."""
    inits = [init(rng, "w0", 8, 3, 3, 3), init(rng, "w1", 8, 8, 1, 1), init(rng, "w2", 8, 8, 1, 1),
             init(rng, "w3", 4, 24, 1, 1), init(rng, "w4", 4, 16, 1, 1)]
    nodes = [helper.make_node("Conv", ["x", "w0"], ["a0"], name="stem", pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["a0", "w1"], ["b"], name="b"),
             helper.make_node("Conv", ["a0", "w2"], ["c"], name="c"),
             helper.make_node("Concat", ["a0", "b", "c"], ["k1"], name="k1", axis=1),
             helper.make_node("Concat", ["c", "a0"], ["k2"], name="k2", axis=1),
             helper.make_node("Conv", ["k1", "w3"], ["y1"], name="y1"),
             helper.make_node("Conv", ["k2", "w4"], ["y2"], name="y2"),
             helper.make_node("Concat", ["y1", "y2"], ["y"], name="y", axis=1)]
    g = helper.make_graph(nodes, "two", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 3, 5, 4])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [1, 8, 5, 4])], inits)
    net = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    x = rng.standard_normal((1, 3, 5, 4)).astype(np.float32)
    m = ce.load(net)
    for _ in range(2):
        assert_close(m.run(x), ort_run(net, x), rtol=1e-4)


@pytest.mark.parametrize("count", [1, 17, (4 << 20) // 4 - 1, (4 << 20) // 4, (5 << 20) // 4 + 3])
def test_cpu_arena_buffers_are_aligned_private_and_sized(count):
    # from 4 MiB on the buffers are huge-page advised maps: same contract as the small ones
    from cnnengine.backend.cpu import CpuBackend
    be = CpuBackend()
    a, b = be.empty(count), be.empty(count)
    assert a.dtype == np.float32 and a.shape == (count,) and a.flags.writeable
    assert a.ctypes.data % 64 == 0 and b.ctypes.data % 64 == 0
    a[:] = 1.0
    b[:] = 2.0
    assert a[0] == 1.0 and a[-1] == 1.0 and b[-1] == 2.0
    if count * 4 >= 4 << 20:
        # a private map: transparent huge pages skip shared memory ("s" in maps)
        at = a.ctypes.data
        for line in open("/proc/self/maps"):
            lo, hi = (int(v, 16) for v in line.split()[0].split("-"))
            if lo <= at < hi:
                assert line.split()[1] == "rw-p", line
                break
        else:
            pytest.fail("the buffer is not in /proc/self/maps")
