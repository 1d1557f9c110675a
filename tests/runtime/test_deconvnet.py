"""ce.deconvnet against a plain-NumPy deconvnet written from Zeiler & Fergus
(2014, section 2.1): its own forward pass, its own switches, its own transposed
convolution (a scatter per output position and tap) and unpooling, on tiny
chain networks built with onnx.helper; the refusals; LeNet-5."""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import cnnengine as ce

from .onnx_builders import residual_net


# ------------------------------------------------------------ networks
def _layers_a(rng):
    """Non-square input; stride-2 padded conv, 3x3/s2 max pool, asymmetric pads."""
    return (1, 3, 23, 30), [
        ("conv1", "Conv", dict(strides=[2, 2], pads=[1, 1, 1, 1]), dict(w=rng.standard_normal((6, 3, 3, 3)),
                                                                           b=rng.standard_normal(6))),
        ("relu1", "Relu", {}, {}),
        ("pool1", "MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2]), {}),
        ("conv2", "Conv", dict(pads=[1, 0, 2, 1]), dict(w=rng.standard_normal((5, 6, 3, 3)),
                                                         b=rng.standard_normal(5))),
        ("relu2", "Relu", {}, {}),
    ]


def _layers_b(rng):
    """Grouped dilated conv, BN, LRN, padded ceil-mode max pool, a stride-2 conv
    that drops a column, padded average pool, flatten and a dense layer."""
    return (1, 4, 19, 16), [
        ("conv1", "Conv", dict(group=2, dilations=[2, 2], pads=[2, 2, 2, 2]),
         dict(w=rng.standard_normal((6, 2, 3, 3)), b=rng.standard_normal(6))),
        ("bn1", "BatchNormalization", dict(epsilon=1e-3),
         dict(g=rng.uniform(0.5, 2, 6), beta=rng.standard_normal(6), m=rng.standard_normal(6),
              v=rng.uniform(0.5, 2, 6))),
        ("relu1", "Relu", {}, {}),
        ("lrn1", "LRN", dict(size=3, alpha=0.5, beta=0.75, bias=2.0), {}),
        ("pool1", "MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1), {}),
        ("conv2", "Conv", dict(strides=[2, 2], kernel_shape=[2, 2]),
         dict(w=rng.standard_normal((5, 6, 2, 2)) * 0.3, b=rng.uniform(1, 3, 5))),
        ("relu2", "Relu", {}, {}),
        ("avg", "AveragePool", dict(kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 1, 1]), {}),
        ("flatten", "Flatten", dict(axis=1), {}),
        ("fc", "Gemm", dict(transB=1), dict(w=rng.standard_normal((7, 30)), b=rng.standard_normal(7))),
    ]


def _onnx(shape, layers):
    nodes, inits, prev = [], [], "x"
    for name, op, attrs, ws in layers:
        names = [f"{name}.{k}" for k in ws]
        inits += [numpy_helper.from_array(np.asarray(v, np.float32), n) for n, v in zip(names, ws.values())]
        nodes.append(helper.make_node(op, [prev] + names, [name + ".out"], name=name, **attrs))
        prev = name + ".out"
    out_shape = None
    g = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                          [helper.make_tensor_value_info(prev, TensorProto.FLOAT, out_shape)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return ce.load(m)


# ------------------------------------------------------------ reference
def _conv_size(size, k, s, d, p0, p1):
    return (size + p0 + p1 - d * (k - 1) - 1) // s + 1


def _pool_size(size, k, s, p0, p1, ceil):
    span = size + p0 + p1 - k
    out = (-(-span // s) if ceil else span // s) + 1
    if ceil and (out - 1) * s >= size + p0:
        out -= 1
    return out


def _conv_geo(a, w):
    kh, kw = w.shape[2:]
    s = a.get("strides", [1, 1])
    d = a.get("dilations", [1, 1])
    p = a.get("pads", [0, 0, 0, 0])
    return kh, kw, s, d, p, a.get("group", 1)


def ref_conv(x, a, w, b):
    kh, kw, s, d, p, groups = _conv_geo(a, w)
    n, c, h, wd = x.shape
    oh, ow = _conv_size(h, kh, s[0], d[0], p[0], p[2]), _conv_size(wd, kw, s[1], d[1], p[1], p[3])
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[2]), (p[1], p[3])))
    cin, cout = c // groups, w.shape[0] // groups
    y = np.zeros((n, w.shape[0], oh, ow))
    for g in range(groups):
        for ky in range(kh):
            for kx in range(kw):
                patch = xp[:, g * cin:(g + 1) * cin, ky * d[0]:ky * d[0] + s[0] * (oh - 1) + 1:s[0],
                           kx * d[1]:kx * d[1] + s[1] * (ow - 1) + 1:s[1]]
                y[:, g * cout:(g + 1) * cout] += np.einsum("nchw,oc->nohw", patch,
                                                           w[g * cout:(g + 1) * cout, :, ky, kx])
    return y + (0 if b is None else b.reshape(1, -1, 1, 1))


def ref_conv_transpose(r, x_shape, a, w):
    """The adjoint of ref_conv: each output value r[o, oy, ox] goes back to every
    input pixel its window read, weighted by the filter tap that read it."""
    kh, kw, s, d, p, groups = _conv_geo(a, w)
    n, c, h, wd = x_shape
    cin, cout = c // groups, w.shape[0] // groups
    back = np.zeros((n, c, h + p[0] + p[2], wd + p[1] + p[3]))
    for g in range(groups):
        wg = w[g * cout:(g + 1) * cout]
        for oy in range(r.shape[2]):
            for ox in range(r.shape[3]):
                v = r[:, g * cout:(g + 1) * cout, oy, ox]                      # (n, cout)
                for ky in range(kh):
                    for kx in range(kw):
                        back[:, g * cin:(g + 1) * cin, oy * s[0] + ky * d[0], ox * s[1] + kx * d[1]] += \
                            v @ wg[:, :, ky, kx]
    return back[:, :, p[0]:p[0] + h, p[1]:p[1] + wd]


def _windows(shape, a):
    """Per output (oy, ox): the in-range input positions of its window, row-major."""
    k, s = a["kernel_shape"], a.get("strides", [1, 1])
    p = a.get("pads", [0, 0, 0, 0])
    ceil = a.get("ceil_mode", 0)
    h, w = shape[2:]
    oh, ow = _pool_size(h, k[0], s[0], p[0], p[2], ceil), _pool_size(w, k[1], s[1], p[1], p[3], ceil)
    out = {}
    for oy in range(oh):
        for ox in range(ow):
            cells = [(oy * s[0] - p[0] + ky, ox * s[1] - p[1] + kx) for ky in range(k[0]) for kx in range(k[1])]
            out[oy, ox] = [(y, x) for y, x in cells if 0 <= y < h and 0 <= x < w]
    return oh, ow, out


def ref_maxpool(x, a):
    oh, ow, win = _windows(x.shape, a)
    y = np.zeros(x.shape[:2] + (oh, ow))
    switch = {}
    for (oy, ox), cells in win.items():
        for n in range(x.shape[0]):
            for c in range(x.shape[1]):
                best = cells[0]
                for cell in cells[1:]:
                    if x[n, c][cell] > x[n, c][best]:      # strictly: the first maximum wins
                        best = cell
                switch[n, c, oy, ox] = best
                y[n, c, oy, ox] = x[n, c][best]
    return y, switch


def ref_unpool(r, x_shape, switch):
    out = np.zeros(x_shape)
    for (n, c, oy, ox), (y, x) in switch.items():
        out[n, c, y, x] += r[n, c, oy, ox]
    return out


def ref_avgpool(x, a):
    oh, ow, win = _windows(x.shape, a)
    y = np.zeros(x.shape[:2] + (oh, ow))
    for (oy, ox), cells in win.items():
        y[:, :, oy, ox] = np.mean([x[:, :, cy, cx] for cy, cx in cells], axis=0)
    return y


def ref_avg_unpool(r, x_shape, a):
    _, _, win = _windows(x_shape, a)
    out = np.zeros(x_shape)
    for (oy, ox), cells in win.items():
        for cy, cx in cells:
            out[:, :, cy, cx] += r[:, :, oy, ox] / len(cells)
    return out


def ref_lrn(x, a):
    size, alpha, beta, bias = a["size"], a["alpha"], a["beta"], a["bias"]
    c = x.shape[1]
    sq = np.zeros_like(x)
    for i in range(c):
        lo, hi = max(0, i - (size - 1) // 2), min(c - 1, i + size // 2)
        sq[:, i] = (x[:, lo:hi + 1] ** 2).sum(axis=1)
    return x / (bias + alpha / size * sq) ** beta


def ref_forward(x, layers):
    """Every layer's input and output, and the max-pool switches, in float64."""
    record = []
    for name, op, a, ws in layers:
        aux = None
        if op == "Conv":
            y = ref_conv(x, a, ws["w"], ws.get("b"))
        elif op == "Relu":
            y = np.maximum(x, 0)
        elif op == "MaxPool":
            y, aux = ref_maxpool(x, a)
        elif op == "AveragePool":
            y = ref_avgpool(x, a)
        elif op == "BatchNormalization":
            y = (x - ws["m"].reshape(1, -1, 1, 1)) / np.sqrt(ws["v"].reshape(1, -1, 1, 1) + a["epsilon"]) * \
                ws["g"].reshape(1, -1, 1, 1) + ws["beta"].reshape(1, -1, 1, 1)
        elif op == "LRN":
            y = ref_lrn(x, a)
        elif op == "Flatten":
            y = x.reshape(x.shape[0], -1)
        elif op == "Gemm":
            y = x @ ws["w"].T + ws["b"]
        record.append((name, op, a, ws, x, y, aux))
        x = y
    return record


def ref_deconvnet(x, layers, layer, channel, unit=None):
    record = ref_forward(x.astype(np.float64), layers)
    names = [r[0] for r in record]
    record = record[:names.index(layer) + 1]
    top = record[-1][5]
    r = np.zeros_like(top)
    if unit is None:
        r[:, channel] = top[:, channel]
    else:
        r[:, channel, unit[0], unit[1]] = top[:, channel, unit[0], unit[1]]
    for name, op, a, ws, xin, _, aux in reversed(record):
        if op == "Conv":
            r = ref_conv_transpose(r, xin.shape, a, ws["w"])
        elif op == "Relu":
            r = np.maximum(r, 0)
        elif op == "MaxPool":
            r = ref_unpool(r, xin.shape, aux)
        elif op == "AveragePool":
            r = ref_avg_unpool(r, xin.shape, a)
        elif op == "BatchNormalization":
            r = r * (ws["g"] / np.sqrt(ws["v"] + a["epsilon"])).reshape(1, -1, 1, 1)
        elif op == "Flatten":
            r = r.reshape(xin.shape)
        elif op == "Gemm":
            r = r @ ws["w"]
        # LRN: passed through
    return r


# ------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def net_a():
    rng = np.random.default_rng(20)
    shape, layers = _layers_a(rng)
    return _onnx(shape, layers), layers, rng.standard_normal(shape).astype(np.float32)


@pytest.fixture(scope="module")
def net_b():
    rng = np.random.default_rng(21)
    shape, layers = _layers_b(rng)
    return _onnx(shape, layers), layers, rng.standard_normal(shape).astype(np.float32)


def _check(model, layers, x, layer, channel, unit=None):
    got = ce.deconvnet(model, x, layer, channel, unit=unit)
    want = ref_deconvnet(x, layers, layer, channel, unit)
    assert got.shape == x.shape and got.dtype == np.float32
    assert np.abs(want).max() > 0, "a zero reference would prove nothing"
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    return got


# ------------------------------------------------------------ tests
def test_reference_forward_is_the_models(net_a, net_b):
    """The reference's own forward pass (and so its switches) agrees with the engine."""
    for model, layers, x in (net_a, net_b):
        _, acts = model.run(x, capture=True)
        for name, _, _, _, _, y, _ in ref_forward(x.astype(np.float64), layers):
            np.testing.assert_allclose(acts[name], y, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("layer,channel", [("relu2", 0), ("relu2", 4), ("conv2", 2), ("pool1", 5),
                                           ("relu1", 1), ("conv1", 3)])
def test_chain_matches_reference(net_a, layer, channel):
    _check(*net_a, layer, channel)


@pytest.mark.parametrize("layer,channel", [("fc", 3), ("fc", 6), ("avg", 1), ("relu2", 4), ("conv2", 0),
                                           ("pool1", 2), ("lrn1", 5), ("bn1", 1)])
def test_groups_dilation_ceil_bn_lrn_avg_gemm_match_reference(net_b, layer, channel):
    _check(*net_b, layer, channel)


@pytest.mark.parametrize("layer,channel,pick", [("relu2", 0, "max"), ("relu2", 4, "last"), ("pool1", 0, "last"),
                                                ("conv1", 2, "max")])
def test_unit_matches_reference(net_a, layer, channel, pick):
    model, layers, x = net_a
    _, acts = model.run(x, capture=[layer])
    m = acts[layer][0, channel]
    live = np.argwhere(m != 0)
    unit = tuple(np.unravel_index(np.argmax(m), m.shape)) if pick == "max" else tuple(live[-1])
    got = _check(model, layers, x, layer, channel, unit)
    whole = ce.deconvnet(model, x, layer, channel)
    assert not np.allclose(got, whole)


def test_unit_stays_in_its_receptive_field(net_a):
    """conv1 (3x3, stride 2, pad 1): unit (y, x) reads input rows 2y-1..2y+1, cols 2x-1..2x+1;
    and with a linear layer the units of a channel add up to the channel."""
    model, _, x = net_a
    total = np.zeros_like(x)
    for y in range(12):
        for xx in range(15):
            p = ce.deconvnet(model, x, "conv1", 4, unit=(y, xx))
            rows, cols = np.nonzero(np.abs(p[0]).sum(axis=0))
            assert rows.min() >= 2 * y - 1 and rows.max() <= 2 * y + 1
            assert cols.min() >= 2 * xx - 1 and cols.max() <= 2 * xx + 1
            total += p
    np.testing.assert_allclose(total, ce.deconvnet(model, x, "conv1", 4), rtol=1e-5, atol=1e-5)


def test_residual_network_names_the_add():
    model = ce.load(residual_net(np.random.default_rng(0), batch=1))
    x = np.random.default_rng(1).standard_normal((1, 3, 12, 12)).astype(np.float32)
    with pytest.raises(ce.UnsupportedOpError, match=r"'add' \(Add\).*merges 2 data paths.*chain"):
        ce.deconvnet(model, x, "relu2", 0)
    with pytest.raises(ce.UnsupportedOpError, match=r"'add'"):
        ce.deconvnet(model, x, "fc", 0)
    # below the add the path is still a chain: conv-bn-relu projects
    p = ce.deconvnet(model, x, "relu1", 2)
    assert p.shape == x.shape and np.abs(p).max() > 0


def test_op_without_a_rule_is_named():
    model = ce.load(residual_net(np.random.default_rng(0), batch=1))
    x = np.zeros((1, 3, 12, 12), np.float32)
    with pytest.raises(ce.UnsupportedOpError, match=r"'softmax' \(Softmax\).*no backward rule"):
        ce.deconvnet(model, x, "softmax", 0)


def test_bad_arguments(net_a):
    model, _, x = net_a
    with pytest.raises(ce.InputError, match="no layer named 'nope'"):
        ce.deconvnet(model, x, "nope", 0)
    with pytest.raises(ce.InputError, match=r"channel .*6 is out of range 0..5"):
        ce.deconvnet(model, x, "conv1", 6)
    with pytest.raises(ce.InputError, match="out of range"):
        ce.deconvnet(model, x, "conv1", -1)
    with pytest.raises(ce.InputError, match="must be an int"):
        ce.deconvnet(model, x, "conv1", 1.0)
    with pytest.raises(ce.InputError, match=r"unit y .* 12 is out of range 0..11"):
        ce.deconvnet(model, x, "conv1", 0, unit=(12, 0))
    with pytest.raises(ce.InputError, match=r"unit x .* 15 is out of range"):
        ce.deconvnet(model, x, "conv1", 0, unit=(0, 15))
    with pytest.raises(ce.InputError, match=r"unit must be \(y, x\)"):
        ce.deconvnet(model, x, "conv1", 0, unit=3)
    with pytest.raises(ce.ShapeError, match=r"\(1, 3, 23, 29\)"):
        ce.deconvnet(model, x[..., :29], "conv1", 0)
    with pytest.raises(ce.ShapeError, match=r"\(1, C, H, W\)"):
        ce.deconvnet(model, np.concatenate([x, x]), "conv1", 0)
    with pytest.raises(ce.ShapeError):
        ce.deconvnet(model, x[0], "conv1", 0)
    with pytest.raises(ce.InputError, match="float32"):
        ce.deconvnet(model, x.astype(np.int32), "conv1", 0)
    with pytest.raises(ce.InputError):
        ce.deconvnet(model, [1, 2, 3], "conv1", 0)


def test_unit_on_a_dense_layer_is_refused(net_b):
    model, _, x = net_b
    with pytest.raises(ce.InputError, match="unit needs a layer with"):
        ce.deconvnet(model, x, "fc", 0, unit=(0, 0))


def test_lenet5_projects_to_its_input():
    model = ce.load("lenet5")
    path = ce.sample_image("cat")
    from cnnengine.preprocess import load_image
    x = load_image(path, model.preprocess)
    assert x.shape == (1, 1, 32, 32)
    for layer, channel in (("c1.tanh", 0), ("s2", 5), ("c3.tanh", 7), ("c5", 100), ("output", 3)):
        p = ce.deconvnet(model, x, layer, channel)
        assert p.shape == (1, 1, 32, 32) and np.isfinite(p).all() and np.abs(p).max() > 0, layer
    # a path gives the same as the array it preprocesses to
    np.testing.assert_array_equal(ce.deconvnet(model, path, "c3.tanh", 7), ce.deconvnet(model, x, "c3.tanh", 7))
    # a c1 unit (5x5 conv) touches only its 5x5 receptive field
    p = ce.deconvnet(model, x, "c1.tanh", 2, unit=(10, 20))
    rows, cols = np.nonzero(p[0, 0])
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (10, 14, 20, 24)


def test_switch_ties_go_to_the_first_cell_of_the_window():
    """A flat map ties in every window: the switch is the window's first cell
    (row-major), as the MaxPool kernels and ONNX's Indices pick it."""
    model = _onnx((1, 1, 4, 6), [("pool", "MaxPool", dict(kernel_shape=[2, 2], strides=[2, 2]), {})])
    p = ce.deconvnet(model, np.ones((1, 1, 4, 6), np.float32), "pool", 0)
    want = np.zeros((4, 6), np.float32)
    want[::2, ::2] = 1
    np.testing.assert_array_equal(p[0, 0], want)


def test_dropout_identity_reshape_are_undone_by_shape():
    """Dropout, Identity and Reshape (which the engine removes or folds) project like Flatten."""
    rng = np.random.default_rng(5)
    conv = ("conv", "Conv", dict(pads=[1, 1, 1, 1]), dict(w=rng.standard_normal((4, 2, 3, 3)), b=np.ones(4)))
    fc = ("fc", "Gemm", dict(transB=1), dict(w=rng.standard_normal((3, 4 * 5 * 6)), b=np.zeros(3)))
    plain = _onnx((1, 2, 5, 6), [conv, ("relu", "Relu", {}, {}), ("flat", "Flatten", {}, {}), fc])
    shape = numpy_helper.from_array(np.array([1, -1], np.int64), "shape")
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Dropout", ["r"], ["d"], name="drop"),
             helper.make_node("Identity", ["d"], ["i"], name="ident"),
             helper.make_node("Reshape", ["i", "shape"], ["f"], name="reshape"),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], name="fc", transB=1)]
    inits = [numpy_helper.from_array(np.asarray(v, np.float32), n) for n, v in
             (("w", conv[3]["w"]), ("b", conv[3]["b"]), ("fw", fc[3]["w"]), ("fb", fc[3]["b"]))] + [shape]
    g = helper.make_graph(nodes, "drop", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 5, 6])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    x = rng.standard_normal((1, 2, 5, 6)).astype(np.float32)
    want = ce.deconvnet(plain, x, "fc", 1)
    assert np.abs(want).max() > 0
    np.testing.assert_allclose(ce.deconvnet(ce.load(m), x, "fc", 1), want, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ce.deconvnet(ce.load(m), x, "drop", 2), ce.deconvnet(plain, x, "relu", 2),
                               rtol=1e-6, atol=1e-6)
