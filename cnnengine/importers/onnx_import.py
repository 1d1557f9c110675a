"""ONNX -> graph IR.

The IR speaks ONNX, so this is mostly a faithful copy. What changes:
- Constant nodes and initializers become weights;
- Dropout becomes Identity (inference), Upsample becomes Resize;
- attributes become plain Python values (strings decoded, tensors -> arrays);
- ops whose meaning changed across opsets get the opset recorded in
  attrs["_opset"] where the executor needs it (Softmax, Resize, ...).
Optional parameters that newer opsets pass as inputs (Clip's min/max, Pad's
pads, Reshape's shape, ...) stay inputs; the planner reads them once they are
constants, which is also how shape subgraphs of TorchScript exports fold.
"""
import json
import os

import numpy as np

from ..errors import ModelFormatError, UnsupportedOpError
from ..ir.graph import MAX_ELEMENTS, Graph, Node, ValueInfo, check_shape
from ..ir.weights import FileTensor, Weights, open_source, raw
from . import onnx_stream

MIN_OPSET = 7


def _max_opset():
    """The newest default-domain opset the installed onnx package defines (28 in onnx 1.23)."""
    try:
        import onnx.defs
        return max(21, int(onnx.defs.onnx_opset_version()))
    except Exception:       # onnx missing or broken: ModelProto input is impossible anyway
        return 21


_max = []


def __getattr__(name):
    """MAX_OPSET, computed on first use: importing onnx costs 0.3-4 s, which
    loading a native file or a cached zoo model never needs."""
    if name == "MAX_OPSET":
        if not _max:
            _max.append(_max_opset())
        return _max[0]
    raise AttributeError(name)
_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
           9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64"}


def load_onnx(src):
    """Read an ONNX model from a path, bytes or ModelProto into a Graph."""
    import onnx
    from google.protobuf.message import DecodeError

    name = src if isinstance(src, (str, os.PathLike)) else "<onnx model>"
    stripped = None
    if isinstance(src, onnx.ModelProto):
        model = src
    else:
        try:
            if isinstance(src, (bytes, bytearray)):
                model = onnx.load_model_from_string(bytes(src))
            else:
                if not os.path.isfile(src):
                    raise ModelFormatError(f"{src}: no such file")
                stripped = onnx_stream.strip(os.fspath(src))
                if stripped is not None:
                    model = onnx.load_model_from_string(stripped[0])
                    stripped = (os.fspath(src), stripped[1])
                else:
                    model = onnx.load(os.fspath(src), load_external_data=False)
                _load_external(model, os.path.dirname(os.path.abspath(src)), name)
        except ModelFormatError:
            raise
        except (DecodeError, ValueError, RuntimeError, OSError, UnicodeDecodeError, TypeError) as exc:
            raise ModelFormatError(f"{name}: not a readable ONNX file ({type(exc).__name__}: {exc})") from None
    return _convert(model, str(name), stripped)


def _load_external(model, base_dir, name):
    """Load external tensor data, refusing paths that leave the model's folder."""
    from onnx.external_data_helper import load_external_data_for_model, uses_external_data

    for t in _all_tensors(model):
        if not uses_external_data(t):
            continue
        info = {e.key: e.value for e in t.external_data}
        loc = info.get("location", "")
        path = os.path.realpath(os.path.join(base_dir, loc))
        if not path.startswith(os.path.realpath(base_dir) + os.sep):
            raise ModelFormatError(f"{name}: tensor {t.name!r} points outside the model folder ({loc!r})")
        if not os.path.isfile(path):
            raise ModelFormatError(f"{name}: external data file {loc!r} for tensor {t.name!r} is missing")
        need = int(info.get("offset", 0)) + int(info.get("length", 0))
        if need > os.path.getsize(path):
            raise ModelFormatError(f"{name}: external data for {t.name!r} lies past the end of {loc!r}")
    try:
        load_external_data_for_model(model, base_dir)
    except (OSError, ValueError) as exc:
        raise ModelFormatError(f"{name}: cannot read external data ({exc})") from None


def _all_tensors(model):
    yield from model.graph.initializer
    for n in model.graph.node:
        for a in n.attribute:
            if a.type == a.TENSOR:
                yield a.t


def tensor_to_array(t, what):
    from onnx import numpy_helper

    dims = [int(d) for d in t.dims]
    check_shape(dims, what)
    try:
        arr = numpy_helper.to_array(t)
    except Exception as exc:
        raise ModelFormatError(f"{what}: unreadable tensor data ({exc})") from None
    if tuple(arr.shape) != tuple(dims):
        raise ModelFormatError(f"{what}: data holds {arr.size} values, dims say {dims}")
    if arr.dtype == np.float64 or arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    elif arr.dtype.kind not in "biuf":
        # ml_dtypes' bfloat16, float8 and float4 (NumPy kind 'V'): exact in float32
        if arr.dtype.name.startswith(("bfloat16", "float8", "float4")):
            arr = arr.astype(np.float32)
        else:
            raise UnsupportedOpError(f"{what}: tensors of type {arr.dtype.name} are not supported")
    return np.asarray(arr, order="C")   # not ascontiguousarray: it turns 0-d scalars into shape (1,)


def _file_tensor(t, where, source, what):
    """An initializer whose raw_data onnx_stream left in the file (read on use)."""
    offset, length, code = where
    dims = [int(d) for d in t.dims]
    check_shape(dims, what)
    stored = np.dtype(onnx_stream.DTYPES[code])
    count = 1
    for d in dims:
        count *= d
    if count * stored.itemsize != length or int(t.data_type) != code:
        raise ModelFormatError(f"{what}: data holds {length // stored.itemsize} values, dims say {dims}")
    dtype = np.float32 if stored in (np.float16, np.float64) else stored
    t = FileTensor(source, offset, dims, stored, dtype)
    t.hold()
    return t


def _attr_value(a, where):
    from onnx import helper

    if a.type == a.TENSOR:
        return tensor_to_array(a.t, f"{where}: attribute {a.name}")
    if a.type == a.GRAPH and where.endswith("(If)"):
        return a.g          # converted by _if_node
    if a.type in (a.GRAPH, a.GRAPHS):
        raise UnsupportedOpError(f"{where}: control-flow subgraphs (attribute {a.name}) are not supported")
    v = helper.get_attribute_value(a)
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, list):
        return [e.decode("utf-8", "replace") if isinstance(e, bytes) else e for e in v]
    return v


def _value_info(vi):
    t = vi.type.tensor_type
    shape = []
    if t.HasField("shape"):
        for d in t.shape.dim:
            # dim_value -1 (Paddle2ONNX, some Keras exports) or 0 (older
            # tf2onnx) mean "dynamic", as ONNX Runtime reads them; so do a
            # dim_param and a dim with neither field set
            if d.HasField("dim_value") and d.dim_value > 0:
                shape.append(int(d.dim_value))
            else:
                shape.append(d.dim_param or None)
    return ValueInfo(vi.name, tuple(shape), _DTYPES.get(t.elem_type, "float32"))


def _convert(model, name, stripped=None):
    if model.ir_version <= 0 or not model.HasField("graph") or not model.graph.output:
        raise ModelFormatError(f"{name}: not an ONNX model (no IR version, graph or outputs)")
    opset = None
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            opset = int(imp.version)
    if opset is None:
        raise ModelFormatError(f"{name}: the model declares no default-domain opset")
    top = __getattr__("MAX_OPSET")
    if not MIN_OPSET <= opset <= top:
        raise UnsupportedOpError(f"{name}: opset {opset} is outside the supported range {MIN_OPSET}-{top}")

    g = model.graph
    weights = Weights()
    places = stripped[1] if stripped is not None else ()
    source = open_source(stripped[0]) if any(places) else None
    for i, t in enumerate(g.initializer):
        where = places[i] if i < len(places) else None
        what = f"{name}: initializer {t.name!r}"
        weights[t.name] = _file_tensor(t, where, source, what) if where else tensor_to_array(t, what)
    total = sum(raw(weights, k).size for k in weights)
    if total > MAX_ELEMENTS:
        raise ModelFormatError(f"{name}: weights hold {total} elements, more than this engine will load")

    inputs = [_value_info(v) for v in g.input if v.name not in weights]
    outputs = [_value_info(v) for v in g.output]
    nodes = _convert_nodes(g, weights, opset, name, set())

    graph = Graph(inputs, outputs, nodes, weights, {"source": str(name), "producer": model.producer_name}, opset)
    for prop in model.metadata_props:
        graph.metadata.setdefault("onnx_metadata", {})[prop.key] = prop.value
    return graph.validate(str(name))


def _convert_nodes(g, weights, opset, name, used_names):
    """The nodes of GraphProto g as IR nodes; Constant outputs go into `weights`."""
    nodes = []
    for i, n in enumerate(g.node):
        if n.domain not in ("", "ai.onnx"):
            raise UnsupportedOpError(f"{name}: node {n.name or i!r} uses op {n.domain}.{n.op_type}, "
                                     f"a custom domain this engine does not run")
        if not all(isinstance(v, str) for v in [n.op_type, n.name, *n.input, *n.output]):
            raise ModelFormatError(f"{name}: node {i} has a name, op or value name that is not UTF-8 text")
        node_name = n.name or f"{n.op_type}_{i}"
        while node_name in used_names:
            node_name = f"{node_name}_{i}"
        used_names.add(node_name)
        where = f"{name}: node {node_name!r} ({n.op_type})"
        _check_arity(n, opset, where)
        attrs = {a.name: _attr_value(a, where) for a in n.attribute}
        op = n.op_type
        ins, outs = list(n.input), list(n.output)
        if op == "Constant":
            weights[outs[0]] = _constant_value(attrs, where)
            continue
        if op == "Dropout":
            # Inference: the identity, unless the file asks for the mask or
            # passes a training_mode input (then the Dropout op checks it).
            if (len(outs) < 2 or not outs[1]) and (len(ins) < 3 or not ins[2]):
                op, ins, outs, attrs = "Identity", ins[:1], outs[:1], {}
        elif op == "BatchNormalization":
            if _check_batchnorm(attrs, outs, opset, where):
                op = "cnn.BatchNormTraining"
        elif op == "Upsample":
            op = "Resize"
            if "scales" in attrs:   # opset 7: scales attribute
                scales = np.asarray(attrs.pop("scales"), dtype=np.float32)
                sname = f"{node_name}__scales"
                weights[sname] = scales
                ins = [ins[0], "", sname]
            else:                   # opset 9: scales input
                ins = [ins[0], "", ins[1]]
            attrs["coordinate_transformation_mode"] = "asymmetric"
            attrs["nearest_mode"] = "floor"
            if attrs.get("mode", "nearest") in ("bilinear", "linear"):
                attrs["mode"] = "linear"
        elif op == "If":
            ins = ins[:1] + _if_branches(attrs, weights, opset, name, where, used_names)
        attrs["_opset"] = opset
        nodes.append(Node(node_name, op, ins, outs, attrs))
    return nodes



def _check_arity(n, opset, where):
    check_arity(n.op_type, list(n.input), list(n.output), opset, where)


_ARITY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "onnx_arity.json")
_arity_table = {}


def arity(op_type, opset):
    """(min inputs, max inputs, min outputs, max outputs) of the op's schema at
    this opset, or None where ONNX does not define it. From onnx_arity.json
    (tools/gen_onnx_arity.py), so that loading a native file does not import
    onnx; from onnx.defs for an op the table lacks."""
    if not _arity_table:
        try:
            with open(_ARITY, encoding="utf-8") as f:
                _arity_table.update(json.load(f)["ops"])
        except (OSError, ValueError, KeyError):
            _arity_table["?"] = []
    versions = _arity_table.get(op_type)
    if versions is None:
        import onnx.defs
        try:
            s = onnx.defs.get_schema(op_type, opset, "")
        except onnx.defs.SchemaError:
            return None
        return s.min_input, s.max_input, s.min_output, s.max_output
    best = None
    for since, *counts in versions:
        if since <= opset:
            best = tuple(counts)
    return best


def check_arity(op_type, inputs, outputs, opset, where):
    """Input and output counts within what the op's schema allows at this opset
    (the native loader checks its nodes with it too)."""
    from .. import ops
    if not ops.known(op_type):
        return      # check_ops names it
    counts = arity(op_type, opset)
    if counts is None:
        return
    min_in, max_in, min_out, max_out = counts
    outs = len(outputs)
    while outs and not outputs[outs - 1]:
        outs -= 1
    if not 1 <= outs <= max_out:
        raise ModelFormatError(f"{where}: {outs} outputs, the op has {min_out}-{max_out} at opset {opset}")
    if not min_in <= len(inputs) <= max_in:
        raise ModelFormatError(f"{where}: {len(inputs)} inputs, the op takes {min_in}-{max_in} at opset {opset}")


def _if_branches(attrs, weights, opset, name, where, used_names):
    """Turn an If's then/else GraphProtos into IR Graphs (attrs then_branch,
    else_branch) whose inputs are the outer values the branches read; returns
    those outer names, which become the If node's inputs after the condition
    (so toposort, liveness and renaming passes see the dependency)."""
    branches, free = {}, []
    for key in ("then_branch", "else_branch"):
        gp = attrs.get(key)
        if gp is None:
            raise ModelFormatError(f"{where}: missing attribute {key}")
        sub_weights = {t.name: tensor_to_array(t, f"{where}: {key} initializer {t.name!r}")
                       for t in gp.initializer}
        nodes = _convert_nodes(gp, sub_weights, opset, name, used_names)
        produced = {o for n in nodes for o in n.outputs if o} | set(sub_weights)
        for ref in [i for n in nodes for i in n.inputs] + [o.name for o in gp.output]:
            if ref and ref not in produced and ref not in free:
                free.append(ref)
        branches[key] = (nodes, sub_weights, [_value_info(v) for v in gp.output])
    for key, (nodes, sub_weights, outs) in branches.items():
        graph = Graph([ValueInfo(v, (), "float32") for v in free], outs, nodes, sub_weights, {}, opset)
        attrs[key] = graph.validate(f"{where} {key}")
    return free


def _check_batchnorm(attrs, outs, opset, where):
    """True for training-mode BatchNormalization (opset 14+: batch statistics,
    run as cnn.BatchNormTraining); an inference one loses its training-only
    attributes. Before opset 14 the running-statistics outputs have no
    attribute that says which mode is meant: refused."""
    if opset >= 14 and int(attrs.get("training_mode", 0)):
        attrs.pop("training_mode")
        return True
    if any(outs[1:]):
        raise UnsupportedOpError(f"{where}: BatchNormalization with running mean/variance outputs "
                                 f"{[o for o in outs[1:] if o]} at opset {opset} (training mode) is not "
                                 f"supported; export the model in eval mode")
    for key in ("spatial", "consumed_inputs", "is_test", "momentum", "training_mode"):
        attrs.pop(key, None)
    return False


def _constant_value(attrs, where):
    if "value" in attrs:
        return attrs["value"]
    for key, dtype in (("value_float", np.float32), ("value_int", np.int64),
                       ("value_floats", np.float32), ("value_ints", np.int64)):
        if key in attrs:
            return np.asarray(attrs[key], dtype=dtype)
    raise UnsupportedOpError(f"{where}: Constant with attributes {sorted(attrs)} is not supported")
