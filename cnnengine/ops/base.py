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
        """This box intersected with a value of `shape`."""
        h, w = int(shape[2]), int(shape[3])
        return Box(max(0, self.y0), min(h, self.y1), max(0, self.x0), min(w, self.x1))

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

    def region(self, params, in_shapes, out_shape, out_box):
        """The input windows read to make out_box of output 0: one Box or FULL per input.

        A Box may reach past the input into its padding (not clipped), so
        that cropped() can tell how much padding the window needs. The
        default, for ops that mix the whole map, reads every input whole."""
        return [FULL] * len(in_shapes)

    def cropped(self, params, in_shapes, in_boxes):
        """Params under which this op, run on the inputs cut to their boxes
        (each clipped to its input), makes exactly the requested output box:
        a conv's or pool's padding becomes what its window reaches past the
        input. None when the op cannot run on a window (the caller then runs
        it whole and cuts the box out). The default: the same params."""
        return params

    def input_index(self, name):
        """Position of a named input (for fused ops: "residual", "gate", ...)."""
        return self.inputs.index(name)


def params_dict(params):
    """A Params object as a plain dict (for printing and the native file)."""
    return {f.name: getattr(params, f.name) for f in fields(params)}


def unsupported(node, what):
    return UnsupportedOpError(f"node {node.name!r} ({node.op}): {what}")
