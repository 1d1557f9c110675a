"""How a conv value is computed (viewer/explain.py): the window x kernel sums
plus the bias equal the engine's own output of the conv at that unit, and
PyTorch's conv2d, for strides, dilations, asymmetric and auto pads, groups
and depthwise convs; the BN/activation chain after the conv is named."""
import numpy as np
import pytest

import cnnengine as ce
from cnnengine.errors import InputError
from cnnengine.viewer import explain

torch = pytest.importorskip("torch")

CASES = [  # (cin, cout, h, w, kernel, attrs)
    (3, 5, 11, 9, (3, 3), dict(strides=[2, 2], pads=[1, 1, 1, 1])),
    (4, 6, 10, 13, (3, 2), dict(strides=[1, 2], pads=[0, 1, 2, 1], dilations=[2, 1])),
    (4, 6, 9, 9, (3, 3), dict(group=2, pads=[2, 2, 2, 2], dilations=[2, 2])),
    (5, 10, 8, 7, (3, 3), dict(group=5, strides=[2, 1], pads=[1, 1, 1, 1])),    # depthwise, multiplier 2
    (6, 6, 7, 8, (5, 5), dict(group=6, auto_pad="SAME_UPPER", strides=[2, 2])),  # depthwise, SAME
    (3, 4, 6, 6, (1, 1), dict()),
]


def conv_model(path, cin, cout, h, w, kernel, attrs, bias=True, tail=(), seed=0):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    g = attrs.get("group", 1)
    wt = rng.standard_normal((cout, cin // g) + tuple(kernel)).astype(np.float32)
    inits = [numpy_helper.from_array(wt, "w")]
    ins = ["x", "w"]
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(cout).astype(np.float32), "b"))
        ins.append("b")
    nodes = [helper.make_node("Conv", ins, ["c"], name="conv", kernel_shape=list(kernel), **attrs)]
    last = "c"
    for op in tail:
        if op == "BatchNormalization":
            for n, v in (("s", 1.5), ("o", 0.2), ("m", 0.1), ("v", 2.0)):
                inits.append(numpy_helper.from_array(np.full(cout, v, np.float32), f"bn_{n}"))
            nodes.append(helper.make_node(op, [last, "bn_s", "bn_o", "bn_m", "bn_v"], ["bn"], name="bn"))
            last = "bn"
        else:
            nodes.append(helper.make_node(op, [last], [op.lower()], name=op.lower()))
            last = op.lower()
    nodes.append(helper.make_node("Identity", [last], ["y"], name="out"))
    graph = helper.make_graph(nodes, "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, h, w])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return str(path), wt, (numpy_helper.to_array(inits[1]) if bias else None)


def torch_conv(x, wt, b, attrs, kernel):
    """PyTorch's conv2d, with ONNX pads applied by F.pad (asymmetric allowed)."""
    import torch.nn.functional as F

    s = attrs.get("strides", [1, 1])
    d = attrs.get("dilations", [1, 1])
    if attrs.get("auto_pad") == "SAME_UPPER":
        pads = []
        for size, k, st, dl in zip(x.shape[2:], kernel, s, d):
            out = -(-size // st)
            total = max((out - 1) * st + (k - 1) * dl + 1 - size, 0)
            pads.append((total // 2, total - total // 2))
        t, l, bo, r = pads[0][0], pads[1][0], pads[0][1], pads[1][1]
    else:
        t, l, bo, r = attrs.get("pads", [0, 0, 0, 0])
    xt = F.pad(torch.from_numpy(x), (l, r, t, bo))
    bt = None if b is None else torch.from_numpy(np.array(b))
    y = F.conv2d(xt, torch.from_numpy(np.array(wt)), bt, stride=s, dilation=d, groups=attrs.get("group", 1))
    return y.numpy()


@pytest.mark.parametrize("case", range(len(CASES)))
def test_sum_equals_the_layer_output(tmp_path, case):
    cin, cout, h, w, kernel, attrs = CASES[case]
    path, wt, b = conv_model(tmp_path / "c.onnx", cin, cout, h, w, kernel, attrs, bias=case != 5)
    model = ce.load(path)
    x = np.random.default_rng(case).standard_normal((1, cin, h, w)).astype(np.float32)
    probe = explain.ConvProbe(model, "conv", x)
    ref = torch_conv(x, wt, b, attrs, kernel)
    assert probe.output.shape == ref.shape
    np.testing.assert_allclose(probe.output, ref, atol=1e-4)
    g = attrs.get("group", 1)
    _, m, oh, ow = ref.shape
    for c in range(m):
        for y in range(oh):
            for xx in range(ow):
                e = probe.explain(c, y, xx)
                assert abs(e.total - e.output) <= 1e-4 * max(1.0, abs(e.output)), (c, y, xx)
                assert abs(e.total - ref[0, c, y, xx]) <= 1e-4 * max(1.0, abs(ref[0, c, y, xx]))
    # the group's channels only, each once, ordered by |contribution|
    e = probe.explain(m - 1, oh - 1, 0)
    per = cin // g
    assert sorted(t.channel for t in e.contributions) == list(range((m - 1) // (m // g) * per,
                                                                    ((m - 1) // (m // g) + 1) * per))
    mags = [abs(t.total) for t in e.contributions]
    assert mags == sorted(mags, reverse=True)
    assert e.bias == (float(b[m - 1]) if b is not None else 0.0)
    np.testing.assert_allclose(e.top(1)[0].products, e.top(1)[0].window * e.top(1)[0].kernel, rtol=1e-6)
    assert abs(e.rest(1) + e.top(1)[0].total + e.bias - e.total) < 1e-9


def test_padding_taps_read_zero(tmp_path):
    path, _, _ = conv_model(tmp_path / "c.onnx", 2, 3, 5, 5, (3, 3), dict(pads=[1, 1, 1, 1]))
    x = np.full((1, 2, 5, 5), 7.0, np.float32)
    e = explain.ConvProbe(ce.load(path), "conv", x).explain(0, 0, 4)
    t = e.contributions[0]
    assert list(e.rows) == [-1, 0, 1] and list(e.cols) == [3, 4, 5]
    assert t.inside.tolist() == [[False] * 3, [True, True, False], [True, True, False]]
    assert (t.window[~t.inside] == 0).all() and (t.window[t.inside] == 7).all()


def test_names_what_follows_and_shows_the_conv_before_it(tmp_path):
    path, wt, b = conv_model(tmp_path / "c.onnx", 3, 4, 6, 6, (3, 3), dict(pads=[1, 1, 1, 1]),
                             tail=("BatchNormalization", "Relu"))
    model = ce.load(path)
    x = np.random.default_rng(1).standard_normal((1, 3, 6, 6)).astype(np.float32)
    probe = explain.ConvProbe(model, "conv", x)
    assert probe.followed_by == [("bn", "BatchNormalization"), ("relu", "Relu")]
    ref = torch_conv(x, wt, b, dict(pads=[1, 1, 1, 1]), (3, 3))
    e = probe.explain(2, 3, 1)
    assert abs(e.output - ref[0, 2, 3, 1]) < 1e-4 and abs(e.total - e.output) < 1e-4


def test_a_layer_fed_by_a_layer_and_bad_requests(tmp_path, tiny_files):
    model = ce.load(tiny_files[0])
    x = np.random.default_rng(2).standard_normal((1, 3, 32, 32)).astype(np.float32)
    probe = explain.ConvProbe(model, "conv2", x)
    assert probe.input_name == "pool1" and probe.followed_by == [("relu2", "Relu")]
    e = probe.explain(11, 7, 0)
    assert abs(e.total - e.output) < 1e-4 and len(e.contributions) == 8
    with pytest.raises(InputError, match="relu1 .Relu. is not a convolution"):
        explain.ConvProbe(model, "relu1", x)
    with pytest.raises(InputError, match="outside its output"):
        probe.explain(12, 0, 0)
