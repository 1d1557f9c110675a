"""The arity table the loaders check nodes with (cnnengine/importers/onnx_arity.json,
made by tools/gen_onnx_arity.py) says what the installed onnx's schemas say,
for every ONNX op cnnengine runs at every opset it reads; and loading a
native file does not import onnx."""
import subprocess
import sys

import pytest

from cnnengine import ops
from cnnengine.importers import onnx_import

onnx_defs = pytest.importorskip("onnx.defs")


def test_table_matches_onnx_schemas():
    for op in (n for n in ops.REGISTRY if not n.startswith("cnn.")):
        for opset in range(onnx_import.MIN_OPSET, onnx_import.MAX_OPSET + 1):
            try:
                s = onnx_defs.get_schema(op, opset, "")
                want = (s.min_input, s.max_input, s.min_output, s.max_output)
            except onnx_defs.SchemaError:
                want = None
            assert onnx_import.arity(op, opset) == want, \
                f"{op} at opset {opset}: rerun tools/gen_onnx_arity.py"


def test_native_load_does_not_import_onnx(tmp_path):
    code = ("import sys, numpy as np, cnnengine as ce\n"
            "m = ce.load('lenet5')\n"
            "m.run(np.zeros((1, 1, 32, 32), np.float32))\n"
            "print('onnx' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stdout + out.stderr
