"""The ONNX project's own node conformance cases, run through ce.load().

The cases are generated in-process from onnx.backend.test.case.node (the
same generator that writes onnx/backend/test/data/node). Every case whose op
is one the engine claims (SUPPORTED, the list from SPEC.md §4 and the issue)
must load, run and match the expected outputs, unless it is in SKIP below
with the reason it is out of scope. A cnnengine.Error for a case is accepted
only when the case is listed.

Opset handling: ONNX 1.23 generates each case at its op's newest
since_version, which for Conv, the pools, several activations and the shape
ops is 22-28 (those versions only widened the type lists: bfloat16, 4-bit
and 8-bit floats). The engine imports opsets 7-21, so such a case is
re-stamped to opset 21 when the op's opset-21 schema has the same inputs and
attributes and the re-stamped model passes onnx's checker with strict shape
inference (which enforces the opset-21 type constraints). A case that is not
valid at opset 21 is out of scope (it exercises a type the engine's opset
range cannot express).

Function-expanded variants ("*_expanded") are included when every node of
the expansion is a SUPPORTED op: they exercise multi-node graphs.
"""
import re
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

import cnnengine as ce  # noqa: E402

SUPPORTED = frozenset("""
Conv ConvTranspose MaxPool AveragePool GlobalAveragePool GlobalMaxPool BatchNormalization Gemm MatMul
Relu LeakyRelu PRelu Elu Selu Sigmoid Tanh HardSigmoid HardSwish Clip Softplus Gelu Erf
Add Sub Mul Div Pow Sum Max Min Mean Concat Split Slice Reshape Flatten Transpose Squeeze Unsqueeze
ReduceMean ReduceSum ReduceMax Softmax LogSoftmax LRN Pad Resize Upsample Dropout Identity
LayerNormalization InstanceNormalization Shape Gather Cast ConstantOfShape Range Expand Constant Where
Equal Neg Abs Sqrt Exp Log Reciprocal Floor Ceil DepthToSpace SpaceToDepth ArgMax Tile
""".split())

MAX_OPSET = 21
RTOL, ATOL = 1e-4, 1e-5

# Out-of-scope cases, by name, with the reason. Regular expressions match the
# whole case name (re.fullmatch).
_LOW_PRECISION = "8-bit float, 4-bit int and bfloat16 tensors are not engine dtypes"
_ZERO_SIZE = "Model.run refuses zero-size float inputs (ShapeError), by design"
_SPATIAL = "1-D and 3-D ConvTranspose: the engine runs 2-D convolutions only (UnsupportedOpError)"
SKIP = {
    # Convolutions on other spatial ranks (pooling of any rank runs: NumPy fallback).
    r"test_convtranspose_1d": _SPATIAL,
    r"test_convtranspose_3d": _SPATIAL,
    # Types outside float32/float16/float64 and the integer/bool index types.
    r"test_cast_(no_saturate_)?\w*(FLOAT8\w*|INT4|UINT4|BFLOAT16)(_to_\w+)?": _LOW_PRECISION,
    r"test_equal_string(_broadcast)?": "string tensors are not an engine dtype",
    # Training-only behaviour: inference engine.
    r"test_batchnorm_(epsilon|example)_training_mode":
        "training-mode BatchNormalization (running statistics outputs): UnsupportedOpError at load",
    r"test_training_dropout(_default)?(_mask)?":
        "random training-mode Dropout (ratio > 0): UnsupportedOpError; the zero-ratio cases run",
    # Zero-size data tensors.
    r"test_reduce_(max|sum)_empty_set": _ZERO_SIZE,
    r"test_reduce_sum_empty_set_non_reduced_axis_zero": _ZERO_SIZE,
    r"test_reshape_allowzero_reordered": _ZERO_SIZE,
    r"test_split_zero_size_splits_opset1[38]": _ZERO_SIZE,
}

# Cases whose expected data is stored rounded: compared at the case's own
# tolerance (onnx's backend runner uses rtol 1e-3 for every node case).
LOOSE = {
    "test_averagepool_2d_ceil_last_window_starts_on_pad": (1e-3, 1e-5),   # expected given to 4 digits
}


def _opset(model):
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    return versions[0] if versions else None


def _restamp(model):
    """The single-node case at opset 21 when it is expressible there, else None.

    Expressible: every attribute the node sets exists in the op's opset-21
    schema, it has no more inputs/outputs than that schema allows, and every
    input and output type is in the opset-21 type constraints."""
    node = model.graph.node[0]
    try:
        s21 = onnx.defs.get_schema(node.op_type, MAX_OPSET)
    except onnx.defs.SchemaError:
        return None
    if any(a.name not in s21.attributes for a in node.attribute):
        return None
    if len(node.input) > len(s21.inputs) and not (s21.inputs and s21.inputs[-1].option ==
                                                  onnx.defs.OpSchema.FormalParameterOption.Variadic):
        return None
    if len(node.output) > len(s21.outputs):
        return None
    allowed = {c.type_param_str: set(c.allowed_type_strs) for c in s21.type_constraints}
    types = {v.name: v.type for v in list(model.graph.input) + list(model.graph.output)}

    def ok(names, params):
        for i, name in enumerate(names):
            if not name:
                continue
            p = params[min(i, len(params) - 1)]
            elem = types[name].tensor_type.elem_type if name in types else 0
            if not elem:
                return False
            tstr = "tensor(%s)" % onnx.TensorProto.DataType.Name(elem).lower()
            if p.type_str in allowed and tstr not in allowed[p.type_str]:
                return False
        return True

    if not ok(node.input, s21.inputs) or not ok(node.output, s21.outputs):
        return None
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for o in m.opset_import:
        if o.domain in ("", "ai.onnx"):
            o.version = MAX_OPSET
    m.ir_version = min(m.ir_version, 10)
    return m


def _collect():
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = collect_testcases()
    base_op = {c.name: c.model.graph.node[0].op_type for c in cases if len(c.model.graph.node) == 1}
    out = []
    for case in cases:
        model = case.model
        ops = {n.op_type for n in model.graph.node}
        if "_expanded" in case.name:
            if not ops <= SUPPORTED or base_op.get(case.name.split("_expanded")[0]) not in SUPPORTED:
                continue
        elif len(model.graph.node) != 1 or model.graph.node[0].op_type not in SUPPORTED:
            continue
        opset = _opset(model)
        if opset is None:
            continue
        if opset > MAX_OPSET:
            if len(model.graph.node) != 1:
                continue
            model = _restamp(model)
            if model is None:
                continue
        out.append((case.name, model, case.data_sets[0]))
    return sorted(out, key=lambda c: c[0])


CASES = _collect()


def _skip_reason(name):
    for pattern, reason in SKIP.items():
        if re.fullmatch(pattern, name):
            return reason
    return None


def _array(v):
    if isinstance(v, onnx.TensorProto):
        return onnx.numpy_helper.to_array(v)
    return np.asarray(v)


def run_case(model, data, rtol=RTOL, atol=ATOL):
    """Load with ce.load(ModelProto), run, compare. Returns nothing; asserts."""
    inputs, expected = data
    m = ce.load(model)
    feeds = {}
    names = [v.name for v in model.graph.input]
    for name, value in zip(names, inputs):
        feeds[name] = _array(value)
    out = m.run(feeds)
    outs = [out] if len(model.graph.output) == 1 else [out[o.name] for o in model.graph.output]
    for o, got, want in zip(model.graph.output, outs, expected):
        got, want = np.asarray(got), _array(want)
        assert got.shape == want.shape, f"output {o.name!r}: shape {got.shape}, expected {want.shape}"
        if want.dtype.kind in "fc":
            assert got.dtype.kind == "f", f"output {o.name!r}: dtype {got.dtype}, expected {want.dtype}"
            np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=rtol, atol=atol,
                                       err_msg=f"output {o.name!r}")
        else:
            assert got.dtype == want.dtype, f"output {o.name!r}: dtype {got.dtype}, expected {want.dtype}"
            np.testing.assert_array_equal(got, want, err_msg=f"output {o.name!r}")


@pytest.mark.parametrize("name,model,data", CASES, ids=[c[0] for c in CASES])
def test_node_case(name, model, data):
    reason = _skip_reason(name)
    if reason is not None:
        # A listed case may fail only with a clean cnnengine.Error (or a wrong
        # answer, which is why it is listed); it must never crash.
        try:
            run_case(model, data)
        except (ce.Error, AssertionError):
            pass
        pytest.skip(reason)
    run_case(model, data, *LOOSE.get(name, (RTOL, ATOL)))


def test_case_count():
    """The generator still yields the cases this file was written against."""
    assert len(CASES) > 500
    skipped = sum(_skip_reason(n) is not None for n, _, _ in CASES)
    assert skipped < len(CASES) // 8, f"{skipped} of {len(CASES)} cases are skipped"


def test_skip_list_is_live():
    """Every SKIP entry names at least one generated case (no stale entries)."""
    names = [c[0] for c in CASES]
    stale = [p for p in SKIP if not any(re.fullmatch(p, n) for n in names)]
    assert not stale, f"SKIP entries that match no case: {stale}"
