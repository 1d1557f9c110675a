"""Train LeNet-5 on scikit-learn's digits and export it to the zoo.

    python tools/train_lenet5.py            # writes cnnengine/zoo/lenet5.onnx and lenet5.json

Data: ``sklearn.datasets.load_digits`` (1,797 8x8 grayscale digits, values
0..16). Each digit becomes an 8x8 uint8 image (value * 255 / 16, white ink on
black) and goes through exactly the zoo's preprocessing
(:func:`cnnengine.preprocess.load_image` with the exported metadata: shorter
side resized to 32 with bilinear interpolation, centre crop 32, scale 1/255,
mean/std normalisation), so an image a user feeds later is treated like the
training data. 20% of the samples (stratified, seed 0) are held out.

Model: :mod:`cnnengine.zoo.lenet5` (c1 6@5x5, s2 avg pool, c3 16@5x5, s4 avg
pool, c5 120@5x5, f6 84, output 10; tanh). Adam (lr 2e-3), batch 32,
30 epochs, seeds fixed, 2 threads; about 10 s on 2 cores (idle machine).

Result (this script, as committed): held-out accuracy 97.5% (351/360); the
run is deterministic (same bytes on every run on one machine).

The ONNX graph is built from the trained weights by
:func:`cnnengine.zoo.lenet5.build_onnx` (opset 13, node names c1, s2, ...),
and checked against the torch model with ONNX Runtime when it is installed.
"""
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from cnnengine.preprocess import load_image  # noqa: E402
from cnnengine.zoo import lenet5  # noqa: E402

SEED = 0
EPOCHS = 30
BATCH = 32
LR = 2e-3
# Mean/std of the upsampled training images (scale 1/255), rounded; fixed
# here so that the metadata does not depend on floating-point summation order.
MEAN, STD = 0.3057, 0.3235


def preprocess_meta():
    return {"resize": 32, "crop": 32, "channels": "L", "scale": 1.0 / 255.0,
            "mean": [MEAN], "std": [STD]}


def digits_to_inputs(images, meta):
    out = np.empty((len(images), 1, 32, 32), np.float32)
    for i, img in enumerate(images):
        u8 = np.clip(np.rint(img * (255.0 / 16.0)), 0, 255).astype(np.uint8)
        out[i] = load_image(u8, meta)[0]
    return out


def main():
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    t0 = time.time()
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    digits = load_digits()
    meta = preprocess_meta()
    x = digits_to_inputs(digits.images, meta)
    y = digits.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, random_state=SEED, stratify=y)
    raw = xtr * STD + MEAN
    print(f"train {len(xtr)}  test {len(xte)}  (train mean {raw.mean():.4f} std {raw.std():.4f})")

    class LeNet5(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(1, 6, 5)
            self.c3 = nn.Conv2d(6, 16, 5)
            self.c5 = nn.Conv2d(16, 120, 5)
            self.f6 = nn.Linear(120, 84)
            self.output = nn.Linear(84, 10)

        def forward(self, t):
            t = F.avg_pool2d(torch.tanh(self.c1(t)), 2)
            t = F.avg_pool2d(torch.tanh(self.c3(t)), 2)
            t = torch.tanh(self.c5(t)).flatten(1)
            return self.output(torch.tanh(self.f6(t)))

    model = LeNet5()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, EPOCHS)
    xtr_t, ytr_t = torch.from_numpy(xtr), torch.from_numpy(ytr)
    gen = torch.Generator().manual_seed(SEED)
    for epoch in range(EPOCHS):
        model.train()
        perm = torch.randperm(len(xtr_t), generator=gen)
        total = 0.0
        for i in range(0, len(perm), BATCH):
            idx = perm[i:i + BATCH]
            loss = F.cross_entropy(model(xtr_t[idx]), ytr_t[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        sched.step()
        if epoch % 10 == 9 or epoch == EPOCHS - 1:
            print(f"epoch {epoch + 1:2d}  loss {total / len(xtr_t):.4f}")
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(xte)).numpy()
    correct = int((logits.argmax(1) == yte).sum())
    acc = correct / len(yte)
    print(f"held-out accuracy {acc * 100:.1f}% ({correct}/{len(yte)})")

    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    source = (f"LeNet-5 trained by cnnengine tools/train_lenet5.py on scikit-learn's digits "
              f"(8x8 upsampled to 32x32); held-out accuracy {acc * 100:.1f}% ({correct}/{len(yte)})")
    onnx_model = lenet5.build_onnx(sd, doc=source)
    for name, expected in lenet5.PARAMS.items():
        got = sd[name + ".weight"].size + sd[name + ".bias"].size
        assert got == expected, (name, got, expected)
    try:
        import onnxruntime as ort

        sess = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
        ort_logits = sess.run(None, {"input": xte})[0]
        err = float(np.abs(ort_logits - logits).max())
        print(f"ONNX Runtime vs torch: max abs error {err:.2e}")
        assert err < 1e-4
    except ImportError:
        print("onnxruntime not installed: ONNX graph not cross-checked")

    zoo = os.path.join(ROOT, "cnnengine", "zoo")
    with open(os.path.join(zoo, "lenet5.onnx"), "wb") as fh:
        fh.write(onnx_model.SerializeToString())
    meta_out = {"labels": [str(i) for i in range(10)], "preprocess": meta, "source": source,
                "accuracy": {"held_out": round(acc, 4), "correct": correct, "total": int(len(yte))}}
    with open(os.path.join(zoo, "lenet5.json"), "w", encoding="utf-8") as fh:
        json.dump(meta_out, fh, indent=1)
        fh.write("\n")
    print(f"wrote {zoo}/lenet5.onnx and lenet5.json in {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
