"""A small, independent torch reference of EfficientNet-Lite0 (tests only).

Written from lukemelas' EfficientNet-PyTorch forward pass with
Conv2dStaticSamePadding (image size 224): every conv pads with F.pad to TF
'SAME' before an unpadded conv; BN eps 1e-3; ReLU6; residual when stride 1
and in == out. Weights are taken from a numpy state dict.
"""
import math

import torch
import torch.nn.functional as F

# (repeats, kernel, stride, expand, in, out) — the Lite0 block strings
LITE0 = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
         (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]


class TorchEfficientNetLite0(torch.nn.Module):
    def __init__(self, state_dict, image_size=224):
        super().__init__()
        self.w = {k: torch.from_numpy(v.copy()) for k, v in state_dict.items()
                  if not k.endswith("num_batches_tracked")}
        self.image_size = image_size

    def _conv(self, x, key, k, s, groups=1):
        ih, iw = self.size
        oh, ow = math.ceil(ih / s), math.ceil(iw / s)
        ph = max((oh - 1) * s + k - ih, 0)
        pw = max((ow - 1) * s + k - iw, 0)
        x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        self.size = (oh, ow)
        return F.conv2d(x, self.w[key + ".weight"], None, s, 0, 1, groups)

    def _bn(self, x, key):
        w = self.w
        return F.batch_norm(x, w[key + ".running_mean"], w[key + ".running_var"],
                            w[key + ".weight"], w[key + ".bias"], False, 0.01, 1e-3)

    def forward(self, x, capture=None):
        self.size = (self.image_size, self.image_size)
        x = F.relu6(self._bn(self._conv(x, "_conv_stem", 3, 2), "_bn0"))
        i = 0
        for repeats, k, s, e, cin, cout in LITE0:
            for j in range(repeats):
                inp_c = cin if j == 0 else cout
                stride = s if j == 0 else 1
                p = f"_blocks.{i}"
                inp = x
                if e != 1:
                    x = F.relu6(self._bn(self._conv(x, p + "._expand_conv", 1, 1), p + "._bn0"))
                x = self._conv(x, p + "._depthwise_conv", k, stride, groups=inp_c * e)
                x = F.relu6(self._bn(x, p + "._bn1"))
                x = self._bn(self._conv(x, p + "._project_conv", 1, 1), p + "._bn2")
                if stride == 1 and inp_c == cout:
                    x = x + inp
                if capture is not None:
                    capture[p] = x
                i += 1
        x = F.relu6(self._bn(self._conv(x, "_conv_head", 1, 1), "_bn1"))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return F.linear(x, self.w["_fc.weight"], self.w["_fc.bias"])
