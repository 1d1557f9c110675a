"""Model: the user-facing object behind ce.load()."""
import os
import threading
from dataclasses import dataclass

import numpy as np

from . import backend as backends
from .errors import Error, InputError, ModelFormatError, ShapeError
from .functional import _common
from .runtime import passes
from .runtime.executor import Executor
from .summary import LayerInfo, format_table, summarize


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple
    dtype: str


def load(path, *, backend="cpu", threads=None, prepare=True):
    """Load a model: an .onnx file, a native .cnn file, a PyTorch state dict of a
    bundled architecture, or a bundled zoo name such as "efficientnet_lite0".

    prepare: make the plan for the declared input shape now (batch 1 where
    the batch is not fixed), so the first run at that shape costs a steady
    run; False leaves it to the first run (a model only inspected or saved)."""
    be = backends.create(backend)
    graph = _read_graph(path)
    model = Model(graph, threads=threads, source=str(path) if isinstance(path, (str, os.PathLike)) else "model",
                  backend=be)
    model._rebuild = _source_of(path)
    if prepare:
        model._prepare()
    return model


def _read_graph(path):
    from .importers import native

    if not isinstance(path, (str, os.PathLike)):
        import onnx
        from .importers.onnx_import import load_onnx
        if isinstance(path, onnx.ModelProto):
            return load_onnx(path)
        raise InputError(f"cannot load a model from a {type(path).__name__}")
    p = os.fspath(path)
    if not os.path.exists(p):
        from . import zoo
        if p in zoo.names():
            bundled = os.path.join(os.path.dirname(zoo.__file__), f"{p}.cnn")
            if os.path.isfile(bundled):
                return native.load(bundled)
            return zoo.load_graph(p)
        raise InputError(f"{p}: no such file, and not a bundled model (bundled: {', '.join(zoo.names())})")
    if os.path.isdir(p):
        raise InputError(f"{p}: is a directory, not a model file")
    low = p.lower()
    if low.endswith((".pth", ".pt", ".ckpt", ".bin")) and not native.is_native(p):
        from . import zoo
        from .importers.onnx_import import load_onnx
        from .importers.torch_state import load_state_dict
        name, proto = zoo.from_state_dict(load_state_dict(p))
        graph = load_onnx(proto)
        graph.metadata.update(zoo.metadata(name))
        graph.metadata["source"] = p
        return graph
    if native.is_native(p):
        return native.load(p)
    from .importers.onnx_import import load_onnx
    return load_onnx(p)


class Model:
    """A loaded network, ready to run. Safe to share between threads."""

    def __init__(self, graph, *, threads=None, source="model", backend="cpu"):
        self.source = source
        self.backend = backends.create(backend) if isinstance(backend, str) else backend
        passes.check_ops(graph, source)
        pipe = passes.run_pipeline(graph, fuse=self.backend.fuses)
        self.graph, self._aliases, self._original = pipe.graph, pipe.aliases, pipe.original
        self._fused = pipe.fused
        self.passes = pipe.reports   # [PassReport]: what each load-time pass did
        self._exec = Executor(self._fused, self.backend)
        self._exec_unfused = Executor(self.graph, self.backend.plain())
        self._threads_arg = threads
        self._rebuild = None
        self.threads = _common.resolve_threads(threads)
        self._summary = None
        self._summary_lock = threading.Lock()
        # (shape, input name) of a float32 input that a run has validated
        # and that ran in one batch chunk: a later C-contiguous float32 array
        # of that shape passes _check_input unchanged, so run() skips it
        self._checked = None

    # ----------------------------------------------------------- metadata
    @property
    def inputs(self):
        return [TensorInfo(v.name, v.shape, v.dtype) for v in self.graph.inputs]

    @property
    def outputs(self):
        return [TensorInfo(v.name, v.shape, v.dtype) for v in self.graph.outputs]

    @property
    def layers(self):
        """Layer (node) names in execution order, as in the source file."""
        return [n.name for n in self._original.nodes]

    @property
    def labels(self):
        return self.graph.metadata.get("labels")

    @property
    def preprocess(self):
        return self.graph.metadata.get("preprocess")

    # ------------------------------------------------------------ running
    def _prepare(self):
        """The fast plan for the declared input shape, made now where every
        dimension but the batch is known and the plan comes from shapes
        alone (Executor.prepare); returns whether one was made. A model the
        plan cannot be made for is left to its first run, which names what fails."""
        feeds = {}
        for spec in self.graph.inputs:
            dims = spec.shape
            if spec.dtype != "float32" or not dims or \
                    not all(isinstance(d, int) and d > 0 for d in dims[1:]):
                return False
            batch = dims[0] if isinstance(dims[0], int) and dims[0] > 0 else 1
            feeds[spec.name] = np.zeros((batch, *dims[1:]), np.float32)
        if not feeds:
            return False
        try:
            with _common.threads_scope(self.threads):
                return self._exec.prepare(feeds)
        except Error:
            return False

    def run(self, x, *, capture=None):
        """Run the network. x: an NCHW float32 array or {input name: array}.

        capture=True returns (output, {layer: activation}) for every layer;
        a list of layer names captures just those."""
        checked = self._checked
        if checked is not None and capture is None and type(x) is np.ndarray and \
                x.shape == checked[0] and x.dtype is _F32 and x.flags.c_contiguous:
            with _common.threads_scope(self.threads):
                merged = self._exec.run({checked[1]: x})
            return self._outputs(merged)
        feeds = self._feeds(x)
        layer_values = self._layer_values(capture)
        batches = self._batch_chunks(feeds)
        results = []
        for chunk in batches:
            if layer_values:
                keep = sorted(set(layer_values.values()))
                executor = self._exec if all(_present(self._fused, v) for v in keep) and \
                    self._exec.computes(chunk, keep) else self._exec_unfused
            else:
                keep, executor = [], self._exec
            with _common.threads_scope(self.threads):
                results.append(executor.run(chunk, keep=keep))
        merged = results[0] if len(results) == 1 else {
            k: np.concatenate([r[k] for r in results], axis=0) for k in results[0]}
        out = self._outputs(merged)
        if not layer_values:
            specs = self.graph.inputs
            if len(batches) == 1 and len(specs) == 1 and specs[0].dtype == "float32" and \
                    type(x) is np.ndarray and x.dtype is _F32 and x.flags.c_contiguous:
                self._checked = (x.shape, specs[0].name)
            return out
        captured = {layer: np.array(merged[value]) for layer, value in layer_values.items()}
        return out, captured

    __call__ = run

    def _outputs(self, merged):
        """The graph output, or {name: output} where there are several."""
        outs = self.graph.outputs
        if len(outs) == 1:
            return merged[outs[0].name]
        return {o.name: merged[o.name] for o in outs}

    def _feeds(self, x):
        specs = self.graph.inputs
        if isinstance(x, dict):
            feeds = dict(x)
            unknown = set(feeds) - {v.name for v in specs}
            if unknown:
                raise InputError(f"unknown input(s) {sorted(unknown)}; the model's inputs are "
                                 f"{[v.name for v in specs]}")
        else:
            if len(specs) != 1:
                raise InputError(f"the model has {len(specs)} inputs {[v.name for v in specs]}; pass a dict")
            feeds = {specs[0].name: x}
        for spec in specs:
            if spec.name not in feeds:
                raise InputError(f"missing input {spec.name!r}")
            feeds[spec.name] = _check_input(spec, feeds[spec.name])
        return feeds

    def _batch_chunks(self, feeds):
        """Split a batch when the file fixes the batch size (many exports say 1)."""
        if not self.graph.inputs:
            return [feeds]
        spec = self.graph.inputs[0]
        declared = spec.shape[0] if spec.shape and isinstance(spec.shape[0], int) else None
        x = feeds[spec.name]
        if declared is None or x.ndim == 0 or x.shape[0] == declared or len(feeds) != 1:
            return [feeds]
        if declared == 0 or x.shape[0] % declared:
            raise ShapeError(f"input {spec.name!r}: batch {x.shape[0]} is not a multiple of the "
                             f"model's fixed batch size {declared}")
        return [{spec.name: x[i:i + declared]} for i in range(0, x.shape[0], declared)]

    def _layer_values(self, capture):
        if capture is None or capture is False:
            return {}
        nodes = {n.name: n for n in self._original.nodes}
        names = list(nodes) if capture is True else ([capture] if isinstance(capture, str) else list(capture))
        out = {}
        for name in names:
            if name not in nodes:
                raise InputError(f"capture: no layer named {name!r} (see Model.layers)")
            value = nodes[name].outputs[0]
            out[name] = self._aliases.get(value, value)
        return out

    def layout_report(self):
        """The backend's layout pass at the model's declared input shape:
        (steps before, steps after, what it changed) -- see Model.passes."""
        feeds = self._zero_feeds(None)
        with _common.threads_scope(self.threads):
            plan = self._exec.plan_for(feeds)
        from .ir.graph import Graph
        before = [n for n in self._fused.nodes if n.name in {s.node.name for s in plan.steps} or
                  any(o in plan.values for o in n.outputs)]
        after = [s.node for s in plan.steps]
        change = passes.describe(Graph([], [], before), Graph([], [], after))
        return passes.PassReport(f"layout ({self.backend.name})", len(after), change)

    def _zero_feeds(self, input_shape):
        feeds = {}
        for spec in self.graph.inputs:
            shape = input_shape if (input_shape is not None and len(self.graph.inputs) == 1) else \
                tuple(d if isinstance(d, int) and d > 0 else 1 for d in spec.shape)
            feeds[spec.name] = np.zeros(shape, spec.dtype if spec.dtype != "float32" else np.float32)
        return feeds

    def profile(self, x, runs=5):
        """Median seconds per executed step over `runs` runs of the fast (fused) plan.

        Returns [(step name, op, seconds)] in execution order; a fused step is
        named after its first layer and covers the layers in its `fused` list.
        Steps that a run executes inside one C program are timed there, the
        others with their Python call."""
        feeds = self._feeds(x)
        samples = {}
        with _common.threads_scope(self.threads):
            self._exec.run(feeds)
            for _ in range(max(1, runs)):
                prof = {}
                self._exec.run(feeds, profile=prof)
                for k, v in prof.items():
                    samples.setdefault(k, []).append(v)
        # in plan order, with the steps the plan added (layout reorders:
        # "<value>/to_nchwc", op "cnn.ToNCHWc") under their own names
        ops = {n.name: n.op for n in self._fused.nodes}
        plan = self._exec.plan_for(feeds)
        return [(s.node.name, ops.get(s.node.name, s.node.op), float(np.median(samples[s.node.name])))
                for s in plan.steps if s.node.name in samples]

    def kernels(self, x=None):
        """What runs each step of the fast plan at x's signature (default: the
        declared input shape, batch 1): [(step name, op, kernel)] in plan
        order, kernel "C" (a C kernel), "shape" (no data moved: a reshape, a
        view, integer shape arithmetic) or "numpy" (a NumPy/reference path)."""
        feeds = self._zero_feeds(None) if x is None else self._feeds(x)
        with _common.threads_scope(self.threads):
            plan = self._exec.plan_for(feeds)
        ops = {n.name: n.op for n in self._fused.nodes}
        return [(s.node.name, ops.get(s.node.name, s.node.op), s.kernel) for s in plan.steps]

    # ------------------------------------------------------------ summary
    def summary(self, input_shape=None):
        """Per-layer shapes, parameters, MACs and receptive fields (batch 1)."""
        if self._summary is None or input_shape is not None:
            feeds = {}
            for spec in self.graph.inputs:
                shape = input_shape if (input_shape is not None and len(self.graph.inputs) == 1) else \
                    tuple(d if isinstance(d, int) else 1 for d in spec.shape)
                feeds[spec.name] = np.zeros(shape, np.float32)
            with _common.threads_scope(self.threads):
                plan = self._exec_unfused.plan_for(feeds)
            info = summarize(self._original, plan.shapes, self._aliases)
            if input_shape is not None:
                return info
            self._summary = info
        return list(self._summary)

    def __str__(self):
        return format_table(self.summary(), title=os.path.basename(self.source))

    def __repr__(self):
        return f"<cnnengine.Model {self.source!r}: {len(self.layers)} layers, inputs " \
               f"{[(i.name, i.shape) for i in self.inputs]}>"

    # ------------------------------------------------------------ pickling
    def __reduce__(self):
        """A Model pickles as its source (path, zoo name or file bytes) and
        options, and is rebuilt on unpickle: how Dask workers get it."""
        src = self._rebuild
        if src is None:
            src = ("native", _native_bytes(self._original))
        return _unpickle, (src, self.backend.name, self._threads_arg)

    def save(self, path):
        """Write the native file (graph + weights + preprocessing + labels)."""
        from .importers import native
        native.save(self._original_for_save(), os.fspath(path))

    def _original_for_save(self):
        return self._original


def _source_of(path):
    """What rebuilds a model loaded from `path` in another process."""
    if isinstance(path, (str, os.PathLike)):
        p = os.fspath(path)
        if os.path.exists(p):
            return ("path", os.path.abspath(p))
        return ("path", p)                      # a zoo name
    return ("onnx", path.SerializeToString())   # an onnx.ModelProto


def _native_bytes(graph):
    """The native file of `graph`, as bytes (a model built in memory)."""
    import tempfile
    from .importers import native
    with tempfile.TemporaryDirectory() as tmp:
        f = os.path.join(tmp, "model.cnn")
        native.save(graph, f)
        with open(f, "rb") as fh:
            return fh.read()


def _unpickle(src, backend, threads):
    kind, data = src
    if kind == "path":
        return load(data, backend=backend, threads=threads)
    if kind == "onnx":
        import onnx
        return load(onnx.load_from_string(data), backend=backend, threads=threads)
    import tempfile
    from .importers import native
    with tempfile.TemporaryDirectory() as tmp:
        f = os.path.join(tmp, "model.cnn")
        with open(f, "wb") as fh:
            fh.write(data)
        graph = native.load(f)      # mmapped: the mapping outlives the deleted file
    model = Model(graph, threads=threads, backend=backend)
    model._rebuild = src
    return model


def _present(graph, value):
    return value in {o for n in graph.nodes for o in n.outputs} or value in graph.weights or \
        value in {v.name for v in graph.inputs}


_F32 = np.dtype(np.float32)
_INDEX_DTYPES = ("bool", "int8", "uint8", "int16", "uint16", "int32", "int64", "uint32", "uint64")


def _check_input(spec, x):
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x)
        except Exception:
            raise InputError(f"input {spec.name!r}: cannot convert {type(x).__name__} to an array") from None
    if spec.dtype in _INDEX_DTYPES:
        # Integer / bool inputs (indices, shapes, masks) keep their declared type.
        if x.dtype.kind not in "biu":
            raise InputError(f"input {spec.name!r}: dtype {x.dtype} given, expected {spec.dtype}")
        x = np.asarray(x, dtype=spec.dtype, order="C")
    elif x.dtype.kind != "f":
        raise InputError(f"input {spec.name!r}: dtype {x.dtype} given, expected float32")
    else:
        x = np.asarray(x, dtype=np.float32, order="C")
    if spec.shape and x.ndim != len(spec.shape):
        raise ShapeError(f"input {spec.name!r}: expected rank {len(spec.shape)} {spec.shape}, got shape {x.shape}")
    for axis, (want, got) in enumerate(zip(spec.shape, x.shape)):
        if axis > 0 and isinstance(want, int) and want > 0 and want != got:
            raise ShapeError(f"input {spec.name!r}: dimension {axis} is {got}, the model expects {want} "
                             f"(expected shape {spec.shape})")
    if x.size == 0 and spec.dtype not in _INDEX_DTYPES:
        raise ShapeError(f"input {spec.name!r}: empty array of shape {x.shape}")
    return x


__all__ = ["load", "Model", "LayerInfo", "TensorInfo", "ModelFormatError"]
