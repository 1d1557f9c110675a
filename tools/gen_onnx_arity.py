"""Write cnnengine/importers/onnx_arity.json: the input and output counts
each ONNX op that cnnengine runs allows, per schema version, from the
installed onnx package. The loaders check node arities against it without
importing onnx (0.3-4 s), which a native file or a cached zoo model never
otherwise needs. Rerun after upgrading onnx; tests/importers/test_onnx_arity.py
compares the table with onnx.defs.

    python tools/gen_onnx_arity.py
"""
import json
import os

import onnx
import onnx.defs

from cnnengine import ops

OUT = os.path.join(os.path.dirname(__file__), "..", "cnnengine", "importers", "onnx_arity.json")


def table():
    wanted = {n for n in ops.REGISTRY if not n.startswith("cnn.")}
    out = {}
    for s in onnx.defs.get_all_schemas_with_history():
        if s.domain == "" and s.name in wanted:
            out.setdefault(s.name, []).append([s.since_version, s.min_input, s.max_input,
                                               s.min_output, s.max_output])
    return {k: sorted(v) for k, v in sorted(out.items())}


def main():
    with open(OUT, "w") as f:
        json.dump({"onnx": onnx.__version__, "ops": table()}, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
