"""What an op is: typed parameters, a shape rule, a region rule, a reference.

Every ONNX op (and every fused op the passes make) is one `OpDef` subclass
in a module of its family (conv.py, pool.py, ...), registered by its op
type names. A graph node carries its parsed `Params` (a frozen dataclass),
so no code reads raw attributes or guesses what an input position means
after import.

Regions: a `Box` is a window of the spatial axes 2 and 3 of a 4-D NCHW
value or a 5-D blocked NCHWc one (rows y0:y1, cols x0:x1, half-open). `region(params, in_shapes, out_box)`
answers which window of each input the op reads to make `out_box` of its
output: the stride/dilation/padding arithmetic for convs and pools, the
same box for elementwise ops, the whole map (FULL) for global pooling,
dense layers, Flatten or Softmax. Incremental occlusion and the executor's
region runs are built on this rule alone.
"""
from dataclasses import dataclass, fields

from ..errors import UnsupportedOpError

FULL = None   # a region covering the whole input value (or an input read whole)


@dataclass(frozen=True)
class Box:
    """Rows [y0, y1) x cols [x0, x1) of axes 2 and 3 of a value."""
    y0: int
    y1: int
    x0: int
    x1: int

    @classmethod
    def full(cls, shape):
        return cls(0, int(shape[2]), 0, int(shape[3]))

    @property
    def rows(self):
        return self.y1 - self.y0

    @property
    def cols(self):
        return self.x1 - self.x0

    @property
    def empty(self):
        return self.y1 <= self.y0 or self.x1 <= self.x0

    def clip(self, shape):
        """This box intersected with a value of `shape` (never inverted: a box
        wholly outside gives an empty one at the nearest edge, whose slice
        cannot wrap around)."""
        h, w = int(shape[2]), int(shape[3])
        y0, x0 = min(max(0, self.y0), h), min(max(0, self.x0), w)
        return Box(y0, max(y0, min(h, self.y1)), x0, max(x0, min(w, self.x1)))

    def union(self, other):
        if other is None:
            return self
        return Box(min(self.y0, other.y0), max(self.y1, other.y1),
                   min(self.x0, other.x0), max(self.x1, other.x1))

    def covers(self, shape):
        return self.y0 <= 0 and self.x0 <= 0 and self.y1 >= shape[2] and self.x1 >= shape[3]

    def slices(self):
        """The index of this box in a 4-D or 5-D array."""
        return (slice(None), slice(None), slice(self.y0, self.y1), slice(self.x0, self.x1))


@dataclass(frozen=True)
class NoParams:
    """For ops without attributes."""


class OpDef:
    """Base of every op definition. Subclasses set:

    types   -- the op type names this definition serves ("Conv", ...)
    Params  -- a frozen dataclass of the parsed attributes
    inputs  -- names of the input positions ("x", "w", "b"); variadic ops end with "*"
    and implement parse / infer / reference, and region when they are spatial.
    """
    types = ()
    Params = NoParams
    inputs = ("x",)

    def parse(self, node):
        """node.attrs (ONNX semantics, see ir/graph.py) -> Params.
        Raises UnsupportedOpError for attribute values the engine does not run."""
        return self.Params()

    def infer(self, params, in_shapes, consts):
        """Output shapes from input shapes. consts: input position -> array for
        inputs known at plan time (weights, folded shape subgraphs), else absent."""
        raise NotImplementedError(type(self).__name__)

    def reference(self, params, ins):
        """Evaluate on NumPy arrays (None for an omitted optional input) -> list of outputs."""
        raise NotImplementedError(type(self).__name__)

    def region(self, params, in_shapes, out_shape, out_box, consts=None):
        """The input windows read to make out_box of output 0: one Box or FULL per input.

        A Box may reach past the input into its padding (not clipped), so
        that cropped() can tell how much padding the window needs. consts
        (as for infer) holds inputs known at plan time: Pad's pads, Resize's
        scales, Slice's starts. The default, for ops that mix the whole map,
        reads every input whole."""
        return [FULL] * len(in_shapes)

    def cropped(self, params, in_shapes, in_boxes, consts=None):
        """Params under which this op, run on the inputs cut to their boxes
        (each clipped to its input), makes exactly the requested output box:
        a conv's or pool's padding becomes what its window reaches past the
        input. None when the op cannot run on a window (the caller then runs
        it whole and cuts the box out). The default, for ops that read whole
        maps: None."""
        return None

    def input_index(self, name):
        """Position of a named input (for fused ops: "residual", "gate", ...)."""
        return self.inputs.index(name)


class PerPixel(OpDef):
    """Ops whose output pixel (y, x) reads only pixel (y, x) of each input
    (elementwise, activations, BatchNormalization, LRN, channel Concat):
    the output box for inputs of the output's spatial size, FULL for inputs
    broadcast over space (spatial size 1, per-channel vectors, scalars)."""

    def region(self, params, in_shapes, out_shape, out_box, consts=None):
        return [pixel_region(s, out_shape, out_box) for s in in_shapes]

    def cropped(self, params, in_shapes, in_boxes, consts=None):
        return params if pixel_windowable(in_shapes, in_boxes) else None


def _spatial(shape, rank):
    """The sizes of `shape` that broadcast against axes 2 and 3 of a rank-`rank` value (None: absent)."""
    lead = rank - len(shape)
    return tuple(int(shape[ax - lead]) if ax - lead >= 0 else None for ax in (2, 3))


def pixel_region(shape, out_shape, out_box):
    """Per-pixel region of one input: the box, [0, 1) on axes it broadcasts, or FULL."""
    if shape is None or len(out_shape) < 4:
        return FULL
    dims = _spatial(shape, len(out_shape))
    if all(d in (None, 1) for d in dims) or len(shape) != len(out_shape):
        return FULL
    (h, w) = dims
    rows = (out_box.y0, out_box.y1) if h != 1 or out_shape[2] == 1 else (0, 1)
    cols = (out_box.x0, out_box.x1) if w != 1 or out_shape[3] == 1 else (0, 1)
    return Box(rows[0], rows[1], cols[0], cols[1])


def pixel_windowable(in_shapes, in_boxes):
    """Whether every input that varies over space got a box (not FULL)."""
    rank = max((len(s) for s in in_shapes if s is not None), default=0)
    if rank < 4:
        return False
    for s, b in zip(in_shapes, in_boxes):
        if s is not None and b is FULL and not all(d in (None, 1) for d in _spatial(s, rank)):
            return False
    return True


def window_pads(in_shape, box):
    """(top, left, bottom, right): how far `box` reaches past a value of in_shape,
    or None when the box holds no input pixel."""
    c = box.clip(in_shape)
    if c.empty:
        return None
    return (c.y0 - box.y0, c.x0 - box.x0, box.y1 - c.y1, box.x1 - c.x1)


def params_dict(params):
    """A Params object as a plain dict (for printing and the native file)."""
    return {f.name: getattr(params, f.name) for f in fields(params)}


def unsupported(node, what):
    return UnsupportedOpError(f"node {node.name!r} ({node.op}): {what}")
