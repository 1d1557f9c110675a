"""The registry covers the old op table, every registered op is complete,
and cnnengine.ops stays below the runtime."""
import ast
import dataclasses
import os

import numpy as np
import pytest

from cnnengine import ops
from cnnengine.errors import ShapeError, UnsupportedOpError
from cnnengine.ir.graph import Graph, Node, ValueInfo
from cnnengine.ops.base import OpDef

# runtime/cpu_ops.py's OPS on 2026-12-06, before it was split into cnnengine/ops
OLD_OPS = frozenset("""
Abs Add And ArgMax ArgMin AveragePool BatchNormalization Cast Ceil Clip Concat ConstantOfShape Conv
ConvTranspose Cos DepthToSpace Div Dropout Elu Equal Erf Exp Expand Flatten Floor Gather Gelu Gemm
GlobalAveragePool GlobalMaxPool Greater GreaterOrEqual HardSigmoid HardSwish Identity If
InstanceNormalization LRN LayerNormalization LeakyRelu Less LessOrEqual Log LogSoftmax MatMul Max MaxPool
Mean Min Mish Mod Mul Neg Not Or PRelu Pad Pow Range Reciprocal ReduceL2 ReduceMax ReduceMean ReduceMin
ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize Round Selu Shape Sigmoid Sign Sin Size Slice
Softmax Softplus SpaceToDepth Split Sqrt Squeeze Sub Sum Tanh Tile Transpose Unsqueeze Where Xor cnn.Silu
""".split())

OPS_DIR = os.path.dirname(ops.__file__)


def test_old_op_set_is_registered():
    assert len(OLD_OPS) == 93
    missing = OLD_OPS - set(ops.REGISTRY)
    assert not missing, f"ops the old table ran that the registry lacks: {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(ops.REGISTRY))
def test_every_op_is_complete(name):
    d = ops.get(name)
    assert name in d.types
    assert type(d).infer is not OpDef.infer, f"{name}: no shape rule"
    assert type(d).reference is not OpDef.reference, f"{name}: no reference"
    assert dataclasses.is_dataclass(d.Params) and d.Params.__dataclass_params__.frozen, \
        f"{name}: Params must be a frozen dataclass"


def test_ops_never_import_the_runtime():
    for fname in sorted(os.listdir(OPS_DIR)):
        if not fname.endswith(".py"):
            continue
        tree = ast.parse(open(os.path.join(OPS_DIR, fname)).read())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                mod = "." * node.level + (node.module or "")
                names = [a.name for a in node.names]
                assert "runtime" not in mod and "runtime" not in names, f"{fname} imports {mod}"
            elif isinstance(node, ast.Import):
                assert not any("runtime" in a.name for a in node.names), f"{fname} imports the runtime"


def test_underscore_attrs_are_ignored():
    """Fusion sets typed params (runtime/passes.py); attributes never carry it."""
    n = Node("c", "Conv", ["x", "w"], ["y"], {"pads": [1, 1, 1, 1], "_fused": ["bn"], "_whatever": 3,
                                              "_act": "relu", "_opset": 13})
    p = ops.params_of(n)
    assert p.pads == (1, 1, 1, 1) and p.act == ""
    assert ops.params_of(n) is p        # parsed once, kept on the node


def test_parse_refuses_unsupported_attributes_naming_the_node():
    with pytest.raises(UnsupportedOpError, match="'r1'.*mode 'bogus'"):
        ops.params_of(Node("r1", "Resize", ["x"], ["y"], {"mode": "bogus"}))
    with pytest.raises(UnsupportedOpError, match="'c1'.*target type 99"):
        ops.params_of(Node("c1", "Cast", ["x"], ["y"], {"to": 99}))
    with pytest.raises(UnsupportedOpError, match="'p1'.*mode 'mirror'"):
        ops.params_of(Node("p1", "Pad", ["x"], ["y"], {"mode": "mirror"}))


def test_errors_name_the_node():
    n = Node("shape_me", "Reshape", ["x", "s"], ["y"], {})
    with pytest.raises(ShapeError, match="node 'shape_me' \\(Reshape\\): cannot reshape"):
        ops.evaluate(n, [np.zeros((2, 3), np.float32), np.array([7])])
    with pytest.raises(ShapeError, match="'shape_me'.*not known at plan time"):
        ops.infer(n, [(2, 3), (1,)], {})


def test_mod_fmod():
    a, b = np.array([-7.0, 7.0], np.float32), np.array([3.0, -3.0], np.float32)
    assert ops.evaluate(Node("m", "Mod", ["a", "b"], ["y"], {}), [a, b])[0].tolist() == [2.0, -2.0]
    assert ops.evaluate(Node("m", "Mod", ["a", "b"], ["y"], {"fmod": 1}), [a, b])[0].tolist() == [-1.0, 1.0]


def _if_node():
    """If(cond): then -> Reshape(x, [-1]) + 1, else -> x * 2; x from the outer graph."""
    then_g = Graph([ValueInfo("x", ())], [ValueInfo("t2", ())],
                   [Node("t_r", "Reshape", ["x", "flat"], ["t1"], {}),
                    Node("t_a", "Add", ["t1", "one"], ["t2"], {})],
                   {"flat": np.array([-1], np.int64), "one": np.ones((), np.float32)})
    else_g = Graph([ValueInfo("x", ())], [ValueInfo("e1", ())],
                   [Node("e_m", "Mul", ["x", "two"], ["e1"], {})], {"two": np.full((), 2, np.float32)})
    return Node("if", "If", ["c", "x"], ["y"], {"then_branch": then_g, "else_branch": else_g})


def test_if_reference_and_shape_rule_without_the_runtime():
    from cnnengine.ops import control
    node = _if_node()
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    saved = control._runner[0]
    control.set_subgraph_runner(control._reference_runner)     # as if no runtime were loaded
    try:
        assert ops.evaluate(node, [np.array(True), x])[0].tolist() == list(np.arange(6) + 1.0)
        assert ops.evaluate(node, [np.array(False), x])[0].tolist() == (x * 2).tolist()
    finally:
        control.set_subgraph_runner(saved)
    assert ops.infer(node, [(), (2, 3)], {0: np.array(True)}) == [(6,)]
    assert ops.infer(node, [(), (2, 3)], {0: np.array(False)}) == [(2, 3)]
    with pytest.raises(ShapeError, match="condition"):
        ops.infer(node, [(), (2, 3)], {})


def test_if_runs_on_the_executor_once_the_runtime_is_loaded():
    import cnnengine.runtime.executor as ex
    from cnnengine.ops import control
    node = _if_node()
    x = np.ones((2, 2), np.float32)
    assert ops.evaluate(node, [np.array(False), x])[0].tolist() == [[2.0, 2.0], [2.0, 2.0]]
    assert control._runner[0] is not control._reference_runner
    run = ops.params_of(node).runners["else_branch"]
    assert isinstance(run.__self__, ex.Executor)
