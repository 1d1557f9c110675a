"""Cross-check tests/models/archs.py and the engine against torchvision (not run in CI).

1. The full-size definitions in archs.FULL have exactly torchvision's state-dict
   keys and shapes (so their parameter/MAC figures are torchvision's).
2. torchvision's own classification models (random weights with randomised
   BatchNorm statistics), exported with the legacy exporter, match ONNX Runtime
   within 1e-3 on logits through cnnengine.

torchvision is installed without its compiled ops (``pip install --no-deps
torchvision==0.28.0``); they cannot load on a CPU-only torch, so
``torchvision._meta_registrations`` is stubbed before import.

    python tools/check_models_vs_torchvision.py [--size 128] [--only resnet18,...]
"""
import argparse
import io
import os
import sys
import time
import types

import numpy as np

sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402
import torchvision.models as tvm  # noqa: E402

import cnnengine as ce  # noqa: E402
from tests.models.archs import FULL, randomize  # noqa: E402

TV_MODELS = ["alexnet", "vgg11_bn", "googlenet", "inception_v3", "resnet18", "resnet50", "resnext50_32x4d",
             "wide_resnet50_2", "densenet121", "squeezenet1_0", "squeezenet1_1", "shufflenet_v2_x1_0",
             "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "mnasnet0_5", "efficientnet_b0",
             "efficientnet_v2_s", "regnet_y_400mf", "regnet_x_400mf", "convnext_tiny"]


def check_definitions():
    ok = True
    for name, (build, params, _) in FULL.items():
        ours = build().state_dict()
        theirs = getattr(tvm, name)().state_dict()
        same = list(ours) == list(theirs) and all(ours[k].shape == theirs[k].shape for k in ours)
        ok &= same
        print(f"{name:14s} state dict {'identical' if same else 'DIFFERENT'} "
              f"({sum(v.numel() for k, v in theirs.items() if 'running' not in k and 'num_batches' not in k):,} params)")
    return ok


def check_exports(names, size, opset):
    import onnxruntime as ort
    worst_ok = True
    for name in names:
        torch.manual_seed(0)
        kwargs = {"aux_logits": False, "init_weights": True} if name in ("googlenet", "inception_v3") else {}
        model = getattr(tvm, name)(**kwargs)
        # AlexNet/VGG's adaptive pools (6x6, 7x7) export only when they divide the feature map
        s = 224 if name in ("alexnet", "vgg11_bn") else (max(size, 75) if name == "inception_v3" else size)
        model = randomize(model, seed=1, calib_shape=(3, s, s))
        buf = io.BytesIO()
        t0 = time.time()
        torch.onnx.export(model, torch.zeros(2, 3, s, s), buf, input_names=["input"], output_names=["logits"],
                          opset_version=opset, dynamo=False, training=torch.onnx.TrainingMode.PRESERVE,
                          dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
        data = buf.getvalue()
        x = np.random.default_rng(0).standard_normal((2, 3, s, s)).astype(np.float32)
        ref = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
        with torch.no_grad():   # float64 oracle: how ill-conditioned is this random network?
            f64 = model.double()(torch.from_numpy(x).double()).numpy()
        ort_err = float(np.max(np.abs(ref - f64)))
        try:
            y = ce.load(__import__("onnx").load_from_string(data)).run(x)
            d = float(np.max(np.abs(y - ref)))
            d64 = float(np.max(np.abs(y - f64)))
            # within 1e-3 of ORT, or (for random deep nets whose float32 logits are
            # ill-conditioned) no further from the float64 result than ORT itself
            status = "ok" if d <= 1e-3 else ("ok (f32-limited)" if d64 <= 2 * ort_err else "MISMATCH")
        except ce.Error as exc:
            d, d64, status = float("nan"), float("nan"), f"ERROR {type(exc).__name__}: {str(exc)[:200]}"
        worst_ok &= status.startswith("ok")
        print(f"{name:20s} {s}px opset {opset}  |logits| {np.abs(ref).max():8.3f}  vs ORT {d:.2e}  "
              f"vs f64 {d64:.2e} (ORT vs f64 {ort_err:.2e})  {status}  ({time.time() - t0:.1f}s)", flush=True)
    return worst_ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--opset", type=int, default=13)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    ok = check_definitions()
    ok &= check_exports(args.only.split(",") if args.only else TV_MODELS, args.size, args.opset)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
