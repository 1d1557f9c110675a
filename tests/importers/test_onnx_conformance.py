"""The ONNX project's own node conformance cases, run through ce.load().

The cases are generated in-process from onnx.backend.test.case.node (the
same generator that writes onnx/backend/test/data/node). Every case whose op
is one the engine claims (SUPPORTED, the list from SPEC.md §4 and the issue)
must load, run and match the expected outputs, unless it is in SKIP below
with the reason it is out of scope. A cnnengine.Error for a case is accepted
only when the case is listed.

Opset handling: every case runs at its own opset, up to the newest the
installed onnx defines (28 in onnx 1.23); the engine accepts that whole range
(Conv, the pools, several activations and the shape ops gained versions
22-28 that only widen the type lists; SpaceToDepth-28 adds mode=CRD).

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

MAX_OPSET = onnx.defs.onnx_opset_version()
RTOL, ATOL = 1e-4, 1e-5

# Out-of-scope cases, by name, with the reason. Regular expressions match the
# whole case name (re.fullmatch).
_LOW_PRECISION = "8-bit and 4-bit floats, 4-bit and 2-bit ints and bfloat16 are not engine dtypes"
_ZERO_SIZE = "Model.run refuses zero-size float inputs (ShapeError), by design"
_SPATIAL = "1-D and 3-D ConvTranspose: the engine runs 2-D convolutions only (UnsupportedOpError)"
SKIP = {
    # Convolutions on other spatial ranks (pooling of any rank runs: NumPy fallback).
    r"test_convtranspose_1d": _SPATIAL,
    r"test_convtranspose_3d": _SPATIAL,
    # Types outside float32/float16/float64 and the integer/bool index types.
    # (float8_e5m2 inputs pass: NumPy calls that dtype a float, so Model.run converts it)
    r"(?!test_cast_FLOAT8E5M2_to_FLOAT(16)?$)test_cast_(no_saturate_|e8m0_)?\w*(FLOAT8\w*|FLOAT4E2M1|U?INT4|U?INT2|BFLOAT16)(_to_\w+)?": _LOW_PRECISION,
    r"test_range_bfloat16_type_positive_delta": _LOW_PRECISION,
    r"test_equal_string(_broadcast)?": "string tensors are not an engine dtype",
    # Training-only behaviour: inference engine.
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
        assert opset <= MAX_OPSET, f"{case.name}: opset {opset} is newer than onnx_opset_version()"
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
