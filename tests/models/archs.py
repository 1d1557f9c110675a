"""The seed notes' CNN architectures, written in plain torch.nn.

Two families live here:

* ``ARCHS``: compact but structurally faithful versions (small inputs, narrow
  widths, few blocks) that keep each architecture's defining pieces — LRN and
  overlapping max pooling and grouped convs in AlexNet, 3x3 stacks in VGG,
  1x1/3x3/5x5/pool Inception branches, basic and bottleneck residual blocks
  with projection shortcuts, dense blocks with transitions, fire modules,
  ShuffleNet's split/shuffle, cardinality-32 grouped convs, SE gates,
  inverted residuals with ReLU6, MBConv with SiLU + SE, and so on.  Each
  entry records its input shape and the ONNX opset it is exported with.

* ``FULL``: full-size definitions whose layer shapes (and state-dict keys)
  match torchvision's ResNet-18/50, VGG-16 and MobileNetV2, for checking the
  parameter and MAC totals of ``Model.summary()`` against published figures
  (tools/check_archs_vs_torchvision.py checks the shapes against torchvision).

No torchvision is needed: CI installs torch only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


# --------------------------------------------------------------------------- helpers
def conv_bn(cin, cout, k=3, s=1, p=None, groups=1, dilation=1, act="relu"):
    """Conv (no bias) + BatchNorm + activation, the usual modern unit."""
    if p is None:
        p = dilation * (k - 1) // 2
    layers = [nn.Conv2d(cin, cout, k, s, p, dilation=dilation, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    if act == "relu":
        layers.append(nn.ReLU(inplace=True))
    elif act == "relu6":
        layers.append(nn.ReLU6(inplace=True))
    elif act == "silu":
        layers.append(nn.SiLU(inplace=True))
    elif act == "hardswish":
        layers.append(nn.Hardswish(inplace=True))
    elif act is not None:
        raise ValueError(act)
    return nn.Sequential(*layers)


def channel_shuffle(x, groups):
    """ShuffleNet's shuffle: reshape (N, g, C/g, H, W), swap g and C/g, flatten back."""
    n, c, h, w = x.size()
    x = x.view(n, groups, c // groups, h, w)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(n, -1, h, w)


class _LRNFunction(torch.autograd.Function):
    """F.local_response_norm that exports as one ONNX LRN node."""

    @staticmethod
    def forward(ctx, x, size, alpha, beta, k):
        return F.local_response_norm(x, size, alpha, beta, k)

    @staticmethod
    def symbolic(g, x, size, alpha, beta, k):
        return g.op("LRN", x, size_i=size, alpha_f=alpha, beta_f=beta, bias_f=k)


class LRN(nn.LocalResponseNorm):
    """nn.LocalResponseNorm exported as the ONNX LRN op (as in the ONNX Model Zoo's
    AlexNet/GoogLeNet/ZFNet). torch's own export of nn.LocalResponseNorm traces
    its Python implementation into a 5-D AveragePool (opset 9) or an If on the
    shape (opset 11+); tests/models/test_architectures.py covers that form too."""

    def forward(self, x):
        return _LRNFunction.apply(x, self.size, self.alpha, self.beta, self.k)


def make_divisible(v, divisor=8, min_value=None):
    """torchvision's _make_divisible (MobileNetV2/EfficientNet channel rounding)."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


# --------------------------------------------------------------------------- LeNet-5
class LeNet5(nn.Module):
    """LeCun et al. 1998: 5x5 convs, tanh, average pooling, three FC layers."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2, 2),
            nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2, 2))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.Tanh(), nn.Linear(120, 84), nn.Tanh(),
            nn.Linear(84, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


# --------------------------------------------------------------------------- AlexNet / ZFNet
class AlexNet(nn.Module):
    """Krizhevsky et al. 2012 (the two-GPU original): 11x11/4 conv, LRN, overlapping
    3x3/2 max pooling, grouped convs (groups=2) in layers 2, 4, 5, dropout FCs."""

    def __init__(self, num_classes=10, w=(24, 64, 96, 96, 64), fc=128):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, w[0], 11, 4, 2), nn.ReLU(inplace=True),
            LRN(5, alpha=1e-4, beta=0.75, k=2.0),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(w[0], w[1], 5, padding=2, groups=2), nn.ReLU(inplace=True),
            LRN(5, alpha=1e-4, beta=0.75, k=2.0),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(w[1], w[2], 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(w[2], w[3], 3, padding=1, groups=2), nn.ReLU(inplace=True),
            nn.Conv2d(w[3], w[4], 3, padding=1, groups=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2))
        self.classifier = nn.Sequential(
            nn.Dropout(0.5), nn.Linear(w[4] * 2 * 2, fc), nn.ReLU(inplace=True),
            nn.Dropout(0.5), nn.Linear(fc, fc), nn.ReLU(inplace=True),
            nn.Linear(fc, num_classes))

    def forward(self, x):  # 96x96 -> 23 -> 11 -> 11 -> 5 -> 5 -> 2
        return self.classifier(torch.flatten(self.features(x), 1))


class ZFNet(nn.Module):
    """Zeiler & Fergus 2013: AlexNet with a 7x7 stride-2 first layer and a
    stride-2 5x5 second layer; LRN and overlapping pooling kept."""

    def __init__(self, num_classes=10, w=(24, 48, 64, 64, 48), fc=96):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, w[0], 7, 2, 1), nn.ReLU(inplace=True),
            LRN(3, alpha=1e-4, beta=0.75, k=1.0),
            nn.MaxPool2d(3, 2, 1),
            nn.Conv2d(w[0], w[1], 5, 2, 0), nn.ReLU(inplace=True),
            LRN(3, alpha=1e-4, beta=0.75, k=1.0),
            nn.MaxPool2d(3, 2, 1),
            nn.Conv2d(w[1], w[2], 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(w[2], w[3], 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(w[3], w[4], 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2))
        self.classifier = nn.Sequential(
            nn.Linear(w[4], fc), nn.ReLU(inplace=True), nn.Dropout(),
            nn.Linear(fc, fc), nn.ReLU(inplace=True), nn.Linear(fc, num_classes))

    def forward(self, x):  # 64 -> 30 -> 15 -> 6 -> 3 -> 3 -> 1
        return self.classifier(torch.flatten(self.features(x), 1))


# --------------------------------------------------------------------------- VGG
class VGG(nn.Module):
    """Simonyan & Zisserman 2014: stacks of 3x3 convs (pad 1) and 2x2 max pools,
    then adaptive average pooling and three FC layers (torchvision layout)."""

    def __init__(self, cfg, num_classes=10, batch_norm=False, pool_out=7, fc=4096, dropout=0.5):
        super().__init__()
        layers, cin = [], 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers.append(nn.Conv2d(cin, v, 3, padding=1))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(v))
                layers.append(nn.ReLU(inplace=True))
                cin = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((pool_out, pool_out))
        self.classifier = nn.Sequential(
            nn.Linear(cin * pool_out * pool_out, fc), nn.ReLU(True), nn.Dropout(dropout),
            nn.Linear(fc, fc), nn.ReLU(True), nn.Dropout(dropout),
            nn.Linear(fc, num_classes))

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


# --------------------------------------------------------------------------- NiN
class NiN(nn.Module):
    """Lin et al. 2013, Network in Network: mlpconv blocks (kxk conv then two 1x1
    convs), max pooling, and a 1x1-conv classifier averaged globally."""

    def __init__(self, num_classes=10):
        super().__init__()

        def mlpconv(cin, cout, k, s, p):
            return nn.Sequential(nn.Conv2d(cin, cout, k, s, p), nn.ReLU(True),
                                 nn.Conv2d(cout, cout, 1), nn.ReLU(True),
                                 nn.Conv2d(cout, cout, 1), nn.ReLU(True))

        self.net = nn.Sequential(
            mlpconv(3, 32, 5, 2, 2), nn.MaxPool2d(3, 2),
            mlpconv(32, 48, 3, 1, 1), nn.MaxPool2d(3, 2), nn.Dropout(0.5),
            mlpconv(48, num_classes, 3, 1, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x):
        return self.net(x)


# --------------------------------------------------------------------------- GoogLeNet / Inception
class Inception(nn.Module):
    """GoogLeNet's Inception module: 1x1 | 1x1->3x3 | 1x1->5x5 | 3x3 maxpool->1x1, concat."""

    def __init__(self, cin, c1, c3r, c3, c5r, c5, pp):
        super().__init__()
        self.branch1 = conv_bn(cin, c1, 1)
        self.branch2 = nn.Sequential(conv_bn(cin, c3r, 1), conv_bn(c3r, c3, 3))
        self.branch3 = nn.Sequential(conv_bn(cin, c5r, 1), conv_bn(c5r, c5, 5))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), conv_bn(cin, pp, 1))

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class GoogLeNet(nn.Module):
    """Szegedy et al. 2014: 7x7/2 stem, LRN, ceil-mode max pools, Inception
    modules, global average pooling, dropout, one FC layer."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 16, 7, 2, 3), nn.ReLU(True), nn.MaxPool2d(3, 2, ceil_mode=True),
            LRN(5, alpha=1e-4, beta=0.75, k=1.0),
            nn.Conv2d(16, 16, 1), nn.ReLU(True), nn.Conv2d(16, 48, 3, padding=1), nn.ReLU(True),
            LRN(5, alpha=1e-4, beta=0.75, k=1.0),
            nn.MaxPool2d(3, 2, ceil_mode=True))
        self.inception3a = Inception(48, 16, 24, 32, 4, 8, 8)      # -> 64
        self.inception3b = Inception(64, 32, 32, 48, 8, 24, 16)    # -> 120
        self.maxpool3 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.inception4a = Inception(120, 48, 24, 52, 4, 12, 16)   # -> 128
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(0.4)
        self.fc = nn.Linear(128, num_classes)

    def forward(self, x):  # 64 -> 32 -> 16 -> 8 -> 4
        x = self.stem(x)
        x = self.inception3b(self.inception3a(x))
        x = self.inception4a(self.maxpool3(x))
        return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))


class InceptionV3Mini(nn.Module):
    """Inception-v3's factorised modules: 5x5 and double-3x3 branches with an
    average-pool branch (InceptionA), a stride-2 grid reduction (InceptionB) and
    1x7/7x1 asymmetric convolutions (InceptionC)."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, 16, 3, 2, 0), conv_bn(16, 24, 3, 1, 0), nn.MaxPool2d(3, 2))
        # InceptionA(24)
        self.a_1x1 = conv_bn(24, 16, 1)
        self.a_5x5 = nn.Sequential(conv_bn(24, 12, 1), conv_bn(12, 16, 5, p=2))
        self.a_3x3dbl = nn.Sequential(conv_bn(24, 16, 1), conv_bn(16, 24, 3), conv_bn(24, 24, 3))
        self.a_pool = conv_bn(24, 8, 1)                                  # -> 64
        # InceptionB(64): grid reduction
        self.b_3x3 = conv_bn(64, 48, 3, 2, 0)
        self.b_dbl = nn.Sequential(conv_bn(64, 16, 1), conv_bn(16, 24, 3), conv_bn(24, 24, 3, 2, 0))  # -> 136
        # InceptionC(136): 7x1 / 1x7
        self.c_1x1 = conv_bn(136, 32, 1)
        self.c_7x7 = nn.Sequential(conv_bn(136, 24, 1),
                                   nn.Conv2d(24, 24, (1, 7), padding=(0, 3), bias=False), nn.BatchNorm2d(24),
                                   nn.ReLU(True),
                                   nn.Conv2d(24, 32, (7, 1), padding=(3, 0), bias=False), nn.BatchNorm2d(32),
                                   nn.ReLU(True))
        self.c_pool = conv_bn(136, 32, 1)                                # -> 96
        self.fc = nn.Linear(96, num_classes)

    def forward(self, x):  # 75 -> 37 -> 35 -> 17 -> 8
        x = self.stem(x)
        pool = F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
        x = torch.cat([self.a_1x1(x), self.a_5x5(x), self.a_3x3dbl(x), self.a_pool(pool)], 1)
        x = torch.cat([self.b_3x3(x), self.b_dbl(x), F.max_pool2d(x, 3, 2)], 1)
        pool = F.avg_pool2d(x, 3, 1, 1)
        x = torch.cat([self.c_1x1(x), self.c_7x7(x), self.c_pool(pool)], 1)
        x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(torch.flatten(x, 1))


# --------------------------------------------------------------------------- ResNet / ResNeXt / SE
class SE(nn.Module):
    """Squeeze-and-excitation (Hu et al. 2017): global average pool, FC-ReLU-FC,
    sigmoid, channel-wise multiply. ``fc=True`` uses Linear layers (the paper);
    otherwise 1x1 convs (torchvision's SqueezeExcitation)."""

    def __init__(self, c, squeeze, fc=False, act=nn.ReLU, gate=nn.Sigmoid):
        super().__init__()
        self.use_fc = fc
        if fc:
            self.fc1, self.fc2 = nn.Linear(c, squeeze), nn.Linear(squeeze, c)
        else:
            self.fc1, self.fc2 = nn.Conv2d(c, squeeze, 1), nn.Conv2d(squeeze, c, 1)
        self.act, self.gate = act(inplace=True), gate()

    def forward(self, x):
        if self.use_fc:
            n, c = x.shape[:2]
            s = F.adaptive_avg_pool2d(x, 1).view(n, c)
            s = self.gate(self.fc2(self.act(self.fc1(s)))).view(n, c, 1, 1)
        else:
            s = self.gate(self.fc2(self.act(self.fc1(F.adaptive_avg_pool2d(x, 1)))))
        return x * s


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64, se=False):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.se = SE(planes, max(4, planes // 4), fc=True) if se else None
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.se is not None:
            out = self.se(out)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (stride here, as torchvision's v1.5; grouped for ResNeXt), 1x1 expand x4."""
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64, se=False):
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.se = SE(planes * 4, planes // 4) if se else None
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.se is not None:
            out = self.se(out)
        return self.relu(out + identity)


class ResNet(nn.Module):
    """He et al. 2015 in torchvision's layout (state-dict keys match torchvision
    at full size): 7x7/2 stem, 3x3/2 max pool, four stages whose first block
    downsamples through a 1x1 stride-2 conv + BN shortcut, global pool, FC."""

    def __init__(self, block, layers, widths=(64, 128, 256, 512), num_classes=1000,
                 groups=1, width_per_group=64, se=False, stem=64):
        super().__init__()
        self.inplanes, self.groups, self.base_width, self.se = stem, groups, width_per_group, se
        self.conv1 = nn.Conv2d(3, stem, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, widths[0], layers[0])
        self.layer2 = self._make_layer(block, widths[1], layers[1], 2)
        self.layer3 = self._make_layer(block, widths[2], layers[2], 2)
        self.layer4 = self._make_layer(block, widths[3], layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[3] * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample, self.groups, self.base_width, self.se)]
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, groups=self.groups, base_width=self.base_width,
                                se=self.se))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# --------------------------------------------------------------------------- DenseNet
class DenseLayer(nn.Module):
    """BN-ReLU-1x1 conv (bottleneck, bn_size*k) then BN-ReLU-3x3 conv (k), concatenated to the input."""

    def __init__(self, cin, growth, bn_size):
        super().__init__()
        self.norm1, self.relu1 = nn.BatchNorm2d(cin), nn.ReLU(True)
        self.conv1 = nn.Conv2d(cin, bn_size * growth, 1, bias=False)
        self.norm2, self.relu2 = nn.BatchNorm2d(bn_size * growth), nn.ReLU(True)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)

    def forward(self, feats):
        x = torch.cat(feats, 1)
        return self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))


class DenseBlock(nn.Module):
    def __init__(self, n, cin, growth, bn_size):
        super().__init__()
        self.layers = nn.ModuleList([DenseLayer(cin + i * growth, growth, bn_size) for i in range(n)])

    def forward(self, x):
        feats = [x]
        for layer in self.layers:
            feats.append(layer(feats))
        return torch.cat(feats, 1)


class DenseNet(nn.Module):
    """Huang et al. 2016 (DenseNet-BC): dense blocks, transitions BN-ReLU-1x1 conv
    (compression 0.5)-2x2 avg pool, final BN-ReLU, global pool, FC."""

    def __init__(self, growth=8, blocks=(2, 3, 2), init=16, bn_size=4, num_classes=10):
        super().__init__()
        feats = [nn.Conv2d(3, init, 7, 2, 3, bias=False), nn.BatchNorm2d(init), nn.ReLU(True),
                 nn.MaxPool2d(3, 2, 1)]
        c = init
        for i, n in enumerate(blocks):
            feats.append(DenseBlock(n, c, growth, bn_size))
            c += n * growth
            if i != len(blocks) - 1:
                feats += [nn.BatchNorm2d(c), nn.ReLU(True), nn.Conv2d(c, c // 2, 1, bias=False),
                          nn.AvgPool2d(2, 2)]
                c //= 2
        feats += [nn.BatchNorm2d(c), nn.ReLU(True)]
        self.features = nn.Sequential(*feats)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


# --------------------------------------------------------------------------- SqueezeNet
class Fire(nn.Module):
    """Squeeze 1x1 then expand 1x1 | 3x3, concatenated."""

    def __init__(self, cin, s, e1, e3):
        super().__init__()
        self.squeeze, self.squeeze_act = nn.Conv2d(cin, s, 1), nn.ReLU(True)
        self.expand1x1, self.expand1x1_act = nn.Conv2d(s, e1, 1), nn.ReLU(True)
        self.expand3x3, self.expand3x3_act = nn.Conv2d(s, e3, 3, padding=1), nn.ReLU(True)

    def forward(self, x):
        x = self.squeeze_act(self.squeeze(x))
        return torch.cat([self.expand1x1_act(self.expand1x1(x)), self.expand3x3_act(self.expand3x3(x))], 1)


class SqueezeNet(nn.Module):
    """Iandola et al. 2016 (v1.1 layout): fire modules between ceil-mode max pools,
    a 1x1-conv classifier, ReLU, global average pool."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 3, 2), nn.ReLU(True), nn.MaxPool2d(3, 2, ceil_mode=True),
            Fire(32, 8, 32, 32), Fire(64, 8, 32, 32), nn.MaxPool2d(3, 2, ceil_mode=True),
            Fire(64, 16, 48, 48), Fire(96, 16, 48, 48), nn.MaxPool2d(3, 2, ceil_mode=True),
            Fire(96, 24, 64, 64))
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(128, num_classes, 1), nn.ReLU(True),
                                        nn.AdaptiveAvgPool2d((1, 1)))

    def forward(self, x):
        return torch.flatten(self.classifier(self.features(x)), 1)


# --------------------------------------------------------------------------- ShuffleNet v2
class ShuffleUnit(nn.Module):
    """ShuffleNet v2 unit: stride 1 splits channels in half (chunk) and transforms
    one half; stride 2 transforms both copies; then concat and channel shuffle."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.stride = stride
        bf = cout // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin),
                nn.Conv2d(cin, bf, 1, bias=False), nn.BatchNorm2d(bf), nn.ReLU(True))
        cin2 = cin if stride > 1 else bf
        self.branch2 = nn.Sequential(
            nn.Conv2d(cin2, bf, 1, bias=False), nn.BatchNorm2d(bf), nn.ReLU(True),
            nn.Conv2d(bf, bf, 3, stride, 1, groups=bf, bias=False), nn.BatchNorm2d(bf),
            nn.Conv2d(bf, bf, 1, bias=False), nn.BatchNorm2d(bf), nn.ReLU(True))

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), 1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), 1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    def __init__(self, repeats=(2, 2, 1), widths=(24, 48, 96, 192, 256), num_classes=10):
        super().__init__()
        self.conv1 = conv_bn(3, widths[0], 3, 2, 1)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages, c = [], widths[0]
        for n, w in zip(repeats, widths[1:4]):
            units = [ShuffleUnit(c, w, 2)] + [ShuffleUnit(w, w, 1) for _ in range(n - 1)]
            stages.append(nn.Sequential(*units))
            c = w
        self.stages = nn.Sequential(*stages)
        self.conv5 = conv_bn(c, widths[4], 1)
        self.fc = nn.Linear(widths[4], num_classes)

    def forward(self, x):
        x = self.conv5(self.stages(self.maxpool(self.conv1(x))))
        return self.fc(x.mean([2, 3]))


# --------------------------------------------------------------------------- MobileNets
class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand (ReLU6), 3x3 depthwise (ReLU6), 1x1 linear
    projection; identity shortcut when stride 1 and channels match."""

    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers = []
        if expand_ratio != 1:
            layers.append(conv_bn(inp, hidden, 1, act="relu6"))
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden, act="relu6"),
                   nn.Conv2d(hidden, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


MOBILENETV2_CFG = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2],
                   [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]


class MobileNetV2(nn.Module):
    """Sandler et al. 2018 in torchvision's layout (t, c, n, s table, width multiplier)."""

    def __init__(self, num_classes=1000, width_mult=1.0, cfg=None, last_channel=1280):
        super().__init__()
        cfg = cfg or MOBILENETV2_CFG
        inp = make_divisible(32 * width_mult)
        self.last_channel = make_divisible(last_channel * max(1.0, width_mult))
        features = [conv_bn(3, inp, 3, 2, act="relu6")]
        for t, c, n, s in cfg:
            oup = make_divisible(c * width_mult)
            for i in range(n):
                features.append(InvertedResidual(inp, oup, s if i == 0 else 1, t))
                inp = oup
        features.append(conv_bn(inp, self.last_channel, 1, act="relu6"))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(self.last_channel, num_classes))

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


class MobileNetV1(nn.Module):
    """Howard et al. 2017: depthwise-separable convs (3x3 depthwise + 1x1 pointwise, BN-ReLU each)."""

    def __init__(self, num_classes=10, cfg=((32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (192, 2))):
        super().__init__()
        layers, c = [conv_bn(3, 16, 3, 2)], 16
        for out, s in cfg:
            layers += [conv_bn(c, c, 3, s, groups=c), conv_bn(c, out, 1)]
            c = out
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


class MobileNetV3Block(nn.Module):
    """MobileNetV3 bneck: expand (hardswish), depthwise, SE with hardsigmoid gate, project."""

    def __init__(self, inp, exp, oup, k, s, use_se):
        super().__init__()
        self.res = s == 1 and inp == oup
        layers = [conv_bn(inp, exp, 1, act="hardswish"), conv_bn(exp, exp, k, s, groups=exp, act="hardswish")]
        if use_se:
            layers.append(SE(exp, make_divisible(exp // 4), act=nn.ReLU, gate=nn.Hardsigmoid))
        layers.append(conv_bn(exp, oup, 1, act=None))
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        y = self.block(x)
        return x + y if self.res else y


class MobileNetV3Mini(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            conv_bn(3, 16, 3, 2, act="hardswish"),
            MobileNetV3Block(16, 64, 24, 3, 2, False), MobileNetV3Block(24, 72, 24, 3, 1, False),
            MobileNetV3Block(24, 96, 40, 5, 2, True), MobileNetV3Block(40, 120, 40, 5, 1, True),
            conv_bn(40, 160, 1, act="hardswish"))
        self.classifier = nn.Sequential(nn.Linear(160, 128), nn.Hardswish(True), nn.Dropout(0.2),
                                        nn.Linear(128, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


# --------------------------------------------------------------------------- EfficientNet
class MBConv(nn.Module):
    """EfficientNet MBConv: 1x1 expand (SiLU), kxk depthwise (SiLU), SE (SiLU,
    sigmoid gate, squeeze = in/4), 1x1 projection; residual when shapes match
    (stochastic depth is identity at inference, so none here)."""

    def __init__(self, inp, oup, k, s, expand):
        super().__init__()
        hidden = inp * expand
        self.res = s == 1 and inp == oup
        layers = []
        if expand != 1:
            layers.append(conv_bn(inp, hidden, 1, act="silu"))
        layers += [conv_bn(hidden, hidden, k, s, groups=hidden, act="silu"),
                   SE(hidden, max(1, inp // 4), act=nn.SiLU),
                   conv_bn(hidden, oup, 1, act=None)]
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        y = self.block(x)
        return x + y if self.res else y


class EfficientNetMini(nn.Module):
    """EfficientNet-B0's structure (Tan & Le 2019), fewer/narrower stages."""

    def __init__(self, num_classes=10):
        super().__init__()
        # (expand, out, repeats, stride, kernel) — B0's first five stages, shortened
        cfg = [(1, 16, 1, 1, 3), (6, 24, 2, 2, 3), (6, 40, 2, 2, 5), (6, 80, 1, 2, 3), (6, 112, 1, 1, 5)]
        layers, c = [conv_bn(3, 32, 3, 2, act="silu")], 32
        for e, o, n, s, k in cfg:
            for i in range(n):
                layers.append(MBConv(c, o, k, s if i == 0 else 1, e))
                c = o
        layers.append(conv_bn(c, 320, 1, act="silu"))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(320, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


# --------------------------------------------------------------------------- Xception / Highway / ConvNeXt
class SeparableConv(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__(nn.Conv2d(cin, cin, 3, 1, 1, groups=cin, bias=False),
                         nn.Conv2d(cin, cout, 1, bias=False))


class XceptionMini(nn.Module):
    """Chollet 2016 entry-flow blocks: ReLU-SepConv-BN twice, 3x3/2 max pool, and a
    1x1 stride-2 conv + BN residual shortcut."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, 16, 3, 2, 0), conv_bn(16, 32, 3))
        self.blocks = nn.ModuleList()
        self.skips = nn.ModuleList()
        for cin, cout in ((32, 64), (64, 96)):
            self.blocks.append(nn.Sequential(
                nn.ReLU(), SeparableConv(cin, cout), nn.BatchNorm2d(cout),
                nn.ReLU(), SeparableConv(cout, cout), nn.BatchNorm2d(cout),
                nn.MaxPool2d(3, 2, 1)))
            self.skips.append(nn.Sequential(nn.Conv2d(cin, cout, 1, 2, bias=False), nn.BatchNorm2d(cout)))
        self.fc = nn.Linear(96, num_classes)

    def forward(self, x):
        x = self.stem(x)
        for block, skip in zip(self.blocks, self.skips):
            x = block(x) + skip(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(F.relu(x), 1), 1))


class HighwayConvNet(nn.Module):
    """Srivastava et al. 2015 highway layers (convolutional): y = H(x)*T(x) + x*(1-T(x)),
    T = sigmoid(conv(x)) with a negative gate bias."""

    def __init__(self, num_classes=10, c=32, n=3):
        super().__init__()
        self.stem = conv_bn(3, c, 3, 2)
        self.h = nn.ModuleList([nn.Conv2d(c, c, 3, padding=1) for _ in range(n)])
        self.t = nn.ModuleList([nn.Conv2d(c, c, 3, padding=1) for _ in range(n)])
        for t in self.t:
            nn.init.constant_(t.bias, -1.0)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        x = self.stem(x)
        for h, t in zip(self.h, self.t):
            gate = torch.sigmoid(t(x))
            x = F.relu(h(x)) * gate + x * (1 - gate)
        return self.fc(x.mean((2, 3)))


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over channels of an NCHW tensor (ConvNeXt's downsampling norm)."""

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    """Liu et al. 2022: 7x7 depthwise, LayerNorm (channels last), Linear x4 + GELU,
    Linear back, layer scale, residual."""

    def __init__(self, dim):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1, self.act, self.pwconv2 = nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(0.5 + torch.rand(dim))

    def forward(self, x):
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y)))) * self.gamma
        return x + y.permute(0, 3, 1, 2)


class ConvNeXtMini(nn.Module):
    def __init__(self, num_classes=10, dims=(24, 48)):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, dims[0], 4, 4), LayerNorm2d(dims[0], eps=1e-6))
        self.stage1 = ConvNeXtBlock(dims[0])
        self.down = nn.Sequential(LayerNorm2d(dims[0], eps=1e-6), nn.Conv2d(dims[0], dims[1], 2, 2))
        self.stage2 = ConvNeXtBlock(dims[1])
        self.norm = nn.LayerNorm(dims[1], eps=1e-6)
        self.head = nn.Linear(dims[1], num_classes)

    def forward(self, x):
        x = self.stage2(self.down(self.stage1(self.stem(x))))
        return self.head(self.norm(x.mean([-2, -1])))


# --------------------------------------------------------------------------- dense prediction
class FCNDecoder(nn.Module):
    """FCN/U-Net-style encoder-decoder: strided convs down, a stride-2
    ConvTranspose up, skip concatenation, bilinear (or nearest) upsampling back to
    the input size; outputs per-pixel class logits (N, classes, H, W)."""

    def __init__(self, num_classes=5, mode="bilinear"):
        super().__init__()
        self.mode = mode
        self.enc1 = conv_bn(3, 16, 3, 2)          # /2
        self.enc2 = conv_bn(16, 32, 3, 2)         # /4
        self.enc3 = conv_bn(32, 48, 3, 2)         # /8
        self.up3 = nn.ConvTranspose2d(48, 32, 4, 2, 1)                      # /8 -> /4
        self.up2 = nn.ConvTranspose2d(64, 16, 3, 2, 1, output_padding=1)    # /4 -> /2
        self.fuse = conv_bn(32, 16, 3)
        self.score = nn.Conv2d(16, num_classes, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        d = torch.cat([F.relu(self.up3(e3)), e2], 1)
        d = torch.cat([F.relu(self.up2(d)), e1], 1)
        d = self.score(self.fuse(d))
        if self.mode == "bilinear":
            return F.interpolate(d, scale_factor=2, mode="bilinear", align_corners=False)
        return F.interpolate(d, scale_factor=2, mode="nearest")


class DilatedNet(nn.Module):
    """Dilated (atrous) convolutions: a context module with dilations 2 and 4 and an
    ASPP-style head (parallel 1x1 and 3x3 dilation 1/2/3 branches + image pooling)."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, 24, 3, 2), conv_bn(24, 32, 3, 2))
        self.context = nn.Sequential(conv_bn(32, 32, 3, dilation=2), conv_bn(32, 32, 3, dilation=4))
        self.aspp = nn.ModuleList([conv_bn(32, 16, 1)] + [conv_bn(32, 16, 3, dilation=d) for d in (1, 2, 3)])
        self.pool_proj = conv_bn(32, 16, 1)
        self.project = conv_bn(80, 32, 1)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        x = self.context(self.stem(x))
        h, w = x.shape[-2:]
        pooled = self.pool_proj(F.adaptive_avg_pool2d(x, 1))
        branches = [b(x) for b in self.aspp] + [pooled.expand(-1, -1, h, w)]
        x = self.project(torch.cat(branches, 1))
        return self.fc(torch.flatten(F.adaptive_max_pool2d(x, 1), 1))


# --------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class Arch:
    name: str
    build: object                 # () -> nn.Module
    input_shape: tuple            # (C, H, W)
    opset: int = 13
    dynamic_batch: bool = False
    # True: export in EVAL mode, where torch folds BatchNorm into the convs
    # itself; False (default): TrainingMode.PRESERVE on the eval-mode model,
    # which keeps BatchNormalization nodes (and unfolded shape subgraphs) in the
    # file, so the engine's own BN folding and constant folding are exercised.
    torch_folds_bn: bool = False


def _vgg_mini(bn):
    return VGG([16, "M", 32, "M", 48, 48, "M", 64, 64, "M"], num_classes=10, batch_norm=bn, pool_out=2, fc=128)


ARCHS = {a.name: a for a in [
    Arch("lenet5", LeNet5, (1, 32, 32), opset=9),
    Arch("alexnet", AlexNet, (3, 96, 96), opset=11),
    Arch("zfnet", ZFNet, (3, 64, 64)),
    Arch("vgg", lambda: _vgg_mini(False), (3, 64, 64), dynamic_batch=True),
    Arch("vgg_bn", lambda: _vgg_mini(True), (3, 64, 64), opset=9),
    Arch("nin", NiN, (3, 64, 64)),
    Arch("googlenet", GoogLeNet, (3, 64, 64), dynamic_batch=True),
    Arch("inception_v3", InceptionV3Mini, (3, 75, 75)),
    Arch("resnet_basic", lambda: ResNet(BasicBlock, [2, 1, 1, 1], (16, 32, 48, 64), 10, stem=16),
         (3, 64, 64), dynamic_batch=True),
    Arch("resnet_bottleneck", lambda: ResNet(Bottleneck, [1, 2, 1, 1], (8, 16, 24, 32), 10, stem=16),
         (3, 64, 64), opset=11, torch_folds_bn=True),
    Arch("resnext", lambda: ResNet(Bottleneck, [1, 1, 1, 1], (16, 32, 48, 64), 10, groups=32,
                                   width_per_group=8, stem=16), (3, 64, 64)),
    # RegNet's wider groups: 24 channels (stage 1) and 48 (stage 2), Winograd on AVX-512 from 4x4 tiles up
    Arch("regnet_groups", lambda: ResNet(Bottleneck, [2, 2, 1, 1], (16, 32, 16, 16), 10, groups=2,
                                         width_per_group=96, stem=16), (3, 64, 64)),
    Arch("se_resnet", lambda: ResNet(BasicBlock, [1, 1, 1, 1], (16, 32, 48, 64), 10, se=True, stem=16),
         (3, 64, 64), dynamic_batch=True),
    Arch("densenet", DenseNet, (3, 64, 64), torch_folds_bn=True),
    Arch("squeezenet", SqueezeNet, (3, 64, 64), opset=9),
    Arch("shufflenet_v2", ShuffleNetV2, (3, 64, 64), dynamic_batch=True),
    Arch("mobilenet_v1", MobileNetV1, (3, 64, 64)),
    Arch("mobilenet_v2", lambda: MobileNetV2(10, width_mult=0.5, cfg=[[1, 16, 1, 1], [6, 24, 2, 2],
                                                                       [6, 32, 2, 2], [6, 64, 2, 2],
                                                                       [6, 96, 1, 1]],
                                             last_channel=256), (3, 64, 64), dynamic_batch=True),
    Arch("mobilenet_v2_opset9", lambda: MobileNetV2(10, width_mult=0.35, cfg=[[1, 16, 1, 1], [6, 24, 2, 2],
                                                                              [6, 32, 2, 2]],
                                                    last_channel=128), (3, 48, 48), opset=9),
    Arch("mobilenet_v3", MobileNetV3Mini, (3, 64, 64)),
    Arch("efficientnet", EfficientNetMini, (3, 64, 64), dynamic_batch=True),
    Arch("xception", XceptionMini, (3, 64, 64)),
    Arch("highway", HighwayConvNet, (3, 32, 32)),
    Arch("convnext", ConvNeXtMini, (3, 64, 64), opset=17),
    Arch("fcn_bilinear", FCNDecoder, (3, 48, 48), dynamic_batch=True),
    Arch("fcn_nearest_opset9", lambda: FCNDecoder(mode="nearest"), (3, 48, 48), opset=9),
    Arch("dilated", DilatedNet, (3, 64, 64)),
]}


# --------------------------------------------------------------------------- full size
FULL = {
    # name: (builder, published params, published GMACs)
    "resnet18": (lambda: ResNet(BasicBlock, [2, 2, 2, 2]), 11_689_512, 1.814),
    "resnet50": (lambda: ResNet(Bottleneck, [3, 4, 6, 3]), 25_557_032, 4.089),
    "vgg16": (lambda: VGG(VGG16_CFG, num_classes=1000), 138_357_544, 15.47),
    "mobilenet_v2": (lambda: MobileNetV2(1000), 3_504_872, 0.3007),
}


# --------------------------------------------------------------------------- weights
@torch.no_grad()
def randomize(model, seed=0, calib_shape=None):
    """Give a model well-scaled random weights and non-trivial BatchNorm statistics.

    Convs and linears get Kaiming-normal weights (fan-in, ReLU gain) and small
    random biases. With ``calib_shape``, every BatchNorm's running statistics are
    set from one training-mode pass on random data (so activations stay O(1)
    through deep stacks) and then perturbed (mean shifted, variance scaled);
    gamma/beta are random — so folding BN into the convs really changes weights."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            fan_in = m.weight[0].numel() if not isinstance(m, nn.ConvTranspose2d) else \
                m.weight.shape[0] // m.groups * m.weight[0, 0].numel()
            m.weight.copy_(torch.randn(m.weight.shape, generator=g) * math.sqrt(2.0 / max(1, fan_in)))
            if m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
        elif isinstance(m, nn.LayerNorm) and m.elementwise_affine:
            m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g))
            m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in bns:
        c = bn.num_features
        bn.weight.copy_(0.5 + torch.rand(c, generator=g))
        bn.bias.copy_(torch.randn(c, generator=g) * 0.2)
    if calib_shape is not None and bns:
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None           # cumulative average: one batch -> that batch's stats
        model.train()
        model(torch.randn((8,) + tuple(calib_shape), generator=g))
    for bn in bns:
        c = bn.num_features
        std = bn.running_var.clamp_min(1e-3).sqrt()
        bn.running_mean.add_(torch.randn(c, generator=g) * 0.1 * std)
        bn.running_var.mul_(torch.exp(torch.empty(c).uniform_(-0.25, 0.25, generator=g)))
        bn.momentum = 0.1
    model.eval()
    return model
