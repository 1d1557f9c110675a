"""atheris harnesses for the three loaders: ONNX importer, native loader, state-dict reader.

    python fuzz/fuzz_loaders.py onnx|native|state_dict --make-seeds CORPUS_DIR
    python fuzz/fuzz_loaders.py onnx|native|state_dict CORPUS_DIR -max_total_time=60

A file is written, loaded with ce.load and (when it loads) run once; a
cnnengine.Error is the expected outcome for garbage, anything else is a
finding (atheris reports the uncaught exception and saves the input).
"""
import io
import os
import pickle
import sys
import tempfile

import numpy as np

SUFFIX = {"onnx": ".onnx", "native": ".cnn", "state_dict": ".pth"}


def make_seeds(target, folder):
    """Seed inputs made here, not committed: small valid files of the target's format."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    import cnnengine as ce
    from tests.importers.test_hostile import _small_conv_onnx
    from tests.runtime.onnx_builders import residual_net
    os.makedirs(folder, exist_ok=True)
    protos = [_small_conv_onnx(), residual_net(np.random.default_rng(0))]
    for i, proto in enumerate(protos):
        path = os.path.join(folder, f"seed{i}{SUFFIX[target]}")
        if target == "onnx":
            data = proto.SerializeToString()
        elif target == "native":
            ce.load(proto).save(path)
            continue
        else:
            rng = np.random.default_rng(i)
            sd = {"conv1.weight": rng.standard_normal((6, 1, 5, 5)).astype(np.float32),
                  "fc.bias": np.zeros(10, np.float32)}
            try:
                import torch
                buf = io.BytesIO()
                torch.save({k: torch.from_numpy(v) for k, v in sd.items()}, buf)
                data = buf.getvalue()
            except ImportError:
                data = pickle.dumps(sd)
        with open(path, "wb") as f:
            f.write(data)


def main():
    target = sys.argv[1]
    if target not in SUFFIX:
        sys.exit(f"target must be one of {sorted(SUFFIX)}")
    if len(sys.argv) > 3 and sys.argv[2] == "--make-seeds":
        make_seeds(target, sys.argv[3])
        return
    import atheris
    with atheris.instrument_imports():
        import cnnengine as ce
    tmp = tempfile.mkdtemp(prefix="cnnfuzz")
    path = os.path.join(tmp, "case" + SUFFIX[target])
    x = np.ones((1, 2, 5, 5), np.float32)

    def one(data):
        with open(path, "wb") as f:
            f.write(data)
        try:
            m = ce.load(path)
            if not m.inputs:         # a graph of constants only
                m.run({})
                return
            shape = [d if isinstance(d, int) and 0 < d < 64 else 1 for d in m.inputs[0].shape] or [1]
            m.run(np.ones(shape, np.float32) if m.inputs[0].dtype.startswith("float") else x)
        except ce.Error:
            pass

    atheris.Setup([sys.argv[0]] + sys.argv[2:], one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
