#!/usr/bin/env python3
"""Writes the weight tensor lists of the zoo (models-and-gpu.md §1.2), one file per model.

torch is not installed on the dev machine, so the lists come from the torchvision (0.14)
architecture definitions transcribed below. Each file has one line per tensor:

    <name> <fp32 bytes>

as the ONNX export (eval mode) stores them: BatchNorm after a convolution is folded into the
convolution (weight + a bias of out-channels), other BatchNorms keep 4 tensors, auxiliary heads
that eval mode does not run (inception_v3, googlenet) are absent. As a check, the script counts
parameters the way torchvision does (BatchNorm: weight and bias) and compares them with the
table's "params (M)" column; it fails if any model is off by more than half the table's last digit.

Run: python3 gen.py   (writes *.txt next to itself)
"""
import math
import os
import sys

TABLE = {  # params (M), from models-and-gpu.md §1.2
    "resnet18": "11.69", "resnet34": "21.80", "resnet50": "25.56", "resnet101": "44.55",
    "resnet152": "60.19", "resnext50_32x4d": "25.03", "resnext101_32x8d": "88.79",
    "wide_resnet50_2": "68.88", "wide_resnet101_2": "126.89", "densenet121": "7.98",
    "densenet161": "28.68", "densenet169": "14.15", "densenet201": "20.01", "mobilenet_v2": "3.50",
    "mobilenet_v3_large": "5.48", "mobilenet_v3_small": "2.54", "inception_v3": "23.83",
    "googlenet": "6.62", "squeezenet1_0": "1.25", "squeezenet1_1": "1.24",
    "shufflenet_v2_x1_0": "2.28", "vgg11": "132.9", "vgg16": "138.4", "vgg19": "143.7",
    "alexnet": "61.10", "efficientnet_b0": "5.29", "efficientnet_b4": "19.34", "mnasnet1_0": "4.38",
    "regnet_y_400mf": "4.34", "convnext_tiny": "28.59", "vit_b_16": "86.57", "bert_base": "109.5",
}


class M:
    def __init__(self):
        self.t = []  # (name, numel) as exported
        self.params = 0  # torchvision count

    def add(self, name, numel, params=None):
        self.t.append((name, numel))
        self.params += numel if params is None else params

    def conv(self, n, cin, cout, k, groups=1, bias=False, bn=False):
        kh, kw = (k, k) if isinstance(k, int) else k
        self.add(n + ".weight", cout * (cin // groups) * kh * kw)
        if bias:
            self.add(n + ".bias", cout)
        elif bn:  # folded BatchNorm: a bias in ONNX, weight+bias in torchvision
            self.add(n + ".bias", cout, params=2 * cout)

    def bn(self, n, c):  # a BatchNorm that is not folded
        self.add(n + ".weight", c)
        self.add(n + ".bias", c)
        self.add(n + ".running_mean", c, params=0)
        self.add(n + ".running_var", c, params=0)

    def ln(self, n, c):
        self.add(n + ".weight", c)
        self.add(n + ".bias", c)

    def linear(self, n, cin, cout, bias=True):
        self.add(n + ".weight", cin * cout)
        if bias:
            self.add(n + ".bias", cout)


def make_divisible(v, d=8, min_value=None):
    min_value = min_value or d
    nv = max(min_value, int(v + d / 2) // d * d)
    if nv < 0.9 * v:
        nv += d
    return nv


def resnet(block, layers, groups=1, wpg=64):
    m = M()
    m.conv("conv1", 3, 64, 7, bn=True)
    inp = 64
    for li, (planes, n) in enumerate(zip([64, 128, 256, 512], layers)):
        for b in range(n):
            stride = 2 if b == 0 and li > 0 else 1
            p = f"layer{li+1}.{b}"
            if block == "basic":
                out = planes
                m.conv(p + ".conv1", inp, planes, 3, bn=True)
                m.conv(p + ".conv2", planes, planes, 3, bn=True)
            else:
                out = planes * 4
                w = int(planes * (wpg / 64.0)) * groups
                m.conv(p + ".conv1", inp, w, 1, bn=True)
                m.conv(p + ".conv2", w, w, 3, groups=groups, bn=True)
                m.conv(p + ".conv3", w, out, 1, bn=True)
            if stride != 1 or inp != out:
                m.conv(p + ".downsample", inp, out, 1, bn=True)
            inp = out
    m.linear("fc", inp, 1000)
    return m


def densenet(k, blocks, init):
    m = M()
    m.conv("features.conv0", 3, init, 7, bn=True)
    c = init
    for bi, n in enumerate(blocks):
        for li in range(n):
            p = f"features.denseblock{bi+1}.denselayer{li+1}"
            m.bn(p + ".norm1", c)
            m.conv(p + ".conv1", c, 4 * k, 1, bn=True)
            m.conv(p + ".conv2", 4 * k, k, 3)
            c += k
        if bi != len(blocks) - 1:
            p = f"features.transition{bi+1}"
            m.bn(p + ".norm", c)
            m.conv(p + ".conv", c, c // 2, 1)
            c //= 2
    m.bn("features.norm5", c)
    m.linear("classifier", c, 1000)
    return m


def mobilenet_v2():
    m = M()
    m.conv("features.0", 3, 32, 3, bn=True)
    inp, i = 32, 1
    for t, c, n, s in [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]:
        for _ in range(n):
            h = int(round(inp * t))
            p = f"features.{i}"
            if t != 1:
                m.conv(p + ".expand", inp, h, 1, bn=True)
            m.conv(p + ".dw", h, h, 3, groups=h, bn=True)
            m.conv(p + ".project", h, c, 1, bn=True)
            inp, i = c, i + 1
    m.conv(f"features.{i}", inp, 1280, 1, bn=True)
    m.linear("classifier.1", 1280, 1000)
    return m


def mobilenet_v3(small):
    RE = False
    large = [(16, 3, 16, 16, False), (16, 3, 64, 24, False), (24, 3, 72, 24, False), (24, 5, 72, 40, True),
             (40, 5, 120, 40, True), (40, 5, 120, 40, True), (40, 3, 240, 80, False), (80, 3, 200, 80, False),
             (80, 3, 184, 80, False), (80, 3, 184, 80, False), (80, 3, 480, 112, True), (112, 3, 672, 112, True),
             (112, 5, 672, 160, True), (160, 5, 960, 160, True), (160, 5, 960, 160, True)]
    sm = [(16, 3, 16, 16, True), (16, 3, 72, 24, False), (24, 3, 88, 24, False), (24, 5, 96, 40, True),
          (40, 5, 240, 40, True), (40, 5, 240, 40, True), (40, 5, 120, 48, True), (48, 5, 144, 48, True),
          (48, 5, 288, 96, True), (96, 5, 576, 96, True), (96, 5, 576, 96, True)]
    cfg, last = (sm, 1024) if small else (large, 1280)
    del RE
    m = M()
    m.conv("features.0", 3, 16, 3, bn=True)
    for i, (cin, k, e, cout, se) in enumerate(cfg):
        p = f"features.{i+1}"
        if e != cin:
            m.conv(p + ".expand", cin, e, 1, bn=True)
        m.conv(p + ".dw", e, e, k, groups=e, bn=True)
        if se:
            s = make_divisible(e // 4, 8)
            m.conv(p + ".se.fc1", e, s, 1, bias=True)
            m.conv(p + ".se.fc2", s, e, 1, bias=True)
        m.conv(p + ".project", e, cout, 1, bn=True)
    lin = cfg[-1][3]
    m.conv(f"features.{len(cfg)+1}", lin, 6 * lin, 1, bn=True)
    m.linear("classifier.0", 6 * lin, last)
    m.linear("classifier.3", last, 1000)
    return m


def inception_v3():
    m = M()
    b = lambda n, i, o, k: m.conv(n, i, o, k, bn=True)
    b("Conv2d_1a_3x3", 3, 32, 3); b("Conv2d_2a_3x3", 32, 32, 3); b("Conv2d_2b_3x3", 32, 64, 3)
    b("Conv2d_3b_1x1", 64, 80, 1); b("Conv2d_4a_3x3", 80, 192, 3)

    def A(n, i, pf):
        b(n + ".branch1x1", i, 64, 1); b(n + ".branch5x5_1", i, 48, 1); b(n + ".branch5x5_2", 48, 64, 5)
        b(n + ".branch3x3dbl_1", i, 64, 1); b(n + ".branch3x3dbl_2", 64, 96, 3); b(n + ".branch3x3dbl_3", 96, 96, 3)
        b(n + ".branch_pool", i, pf, 1)
        return 224 + pf

    def B(n, i):
        b(n + ".branch3x3", i, 384, 3); b(n + ".branch3x3dbl_1", i, 64, 1)
        b(n + ".branch3x3dbl_2", 64, 96, 3); b(n + ".branch3x3dbl_3", 96, 96, 3)
        return 384 + 96 + i

    def C(n, i, c7):
        b(n + ".branch1x1", i, 192, 1)
        b(n + ".branch7x7_1", i, c7, 1); b(n + ".branch7x7_2", c7, c7, (1, 7)); b(n + ".branch7x7_3", c7, 192, (7, 1))
        b(n + ".branch7x7dbl_1", i, c7, 1); b(n + ".branch7x7dbl_2", c7, c7, (7, 1)); b(n + ".branch7x7dbl_3", c7, c7, (1, 7))
        b(n + ".branch7x7dbl_4", c7, c7, (7, 1)); b(n + ".branch7x7dbl_5", c7, 192, (1, 7))
        b(n + ".branch_pool", i, 192, 1)
        return 768

    def D(n, i):
        b(n + ".branch3x3_1", i, 192, 1); b(n + ".branch3x3_2", 192, 320, 3)
        b(n + ".branch7x7x3_1", i, 192, 1); b(n + ".branch7x7x3_2", 192, 192, (1, 7))
        b(n + ".branch7x7x3_3", 192, 192, (7, 1)); b(n + ".branch7x7x3_4", 192, 192, 3)
        return 320 + 192 + i

    def E(n, i):
        b(n + ".branch1x1", i, 320, 1)
        b(n + ".branch3x3_1", i, 384, 1); b(n + ".branch3x3_2a", 384, 384, (1, 3)); b(n + ".branch3x3_2b", 384, 384, (3, 1))
        b(n + ".branch3x3dbl_1", i, 448, 1); b(n + ".branch3x3dbl_2", 448, 384, 3)
        b(n + ".branch3x3dbl_3a", 384, 384, (1, 3)); b(n + ".branch3x3dbl_3b", 384, 384, (3, 1))
        b(n + ".branch_pool", i, 192, 1)
        return 2048

    c = A("Mixed_5b", 192, 32); c = A("Mixed_5c", c, 64); c = A("Mixed_5d", c, 64)
    c = B("Mixed_6a", c)
    c = C("Mixed_6b", c, 128); c = C("Mixed_6c", c, 160); c = C("Mixed_6d", c, 160); c = C("Mixed_6e", c, 192)
    c = D("Mixed_7a", c); c = E("Mixed_7b", c); c = E("Mixed_7c", c)
    m.linear("fc", c, 1000)
    return m


def googlenet():
    m = M()
    b = lambda n, i, o, k: m.conv(n, i, o, k, bn=True)
    b("conv1", 3, 64, 7); b("conv2", 64, 64, 1); b("conv3", 64, 192, 3)
    for n, (i, c1, r3, c3, r5, c5, pp) in [
            ("3a", (192, 64, 96, 128, 16, 32, 32)), ("3b", (256, 128, 128, 192, 32, 96, 64)),
            ("4a", (480, 192, 96, 208, 16, 48, 64)), ("4b", (512, 160, 112, 224, 24, 64, 64)),
            ("4c", (512, 128, 128, 256, 24, 64, 64)), ("4d", (512, 112, 144, 288, 32, 64, 64)),
            ("4e", (528, 256, 160, 320, 32, 128, 128)), ("5a", (832, 256, 160, 320, 32, 128, 128)),
            ("5b", (832, 384, 192, 384, 48, 128, 128))]:
        p = "inception" + n
        b(p + ".branch1", i, c1, 1)
        b(p + ".branch2.0", i, r3, 1); b(p + ".branch2.1", r3, c3, 3)
        b(p + ".branch3.0", i, r5, 1); b(p + ".branch3.1", r5, c5, 3)  # torchvision uses 3x3 here
        b(p + ".branch4.1", i, pp, 1)
    m.linear("fc", 1024, 1000)
    return m


def squeezenet(v):
    m = M()
    if v == "1_0":
        m.conv("features.0", 3, 96, 7, bias=True)
        fires = [(96, 16, 64, 64), (128, 16, 64, 64), (128, 32, 128, 128), (256, 32, 128, 128),
                 (256, 48, 192, 192), (384, 48, 192, 192), (384, 64, 256, 256), (512, 64, 256, 256)]
    else:
        m.conv("features.0", 3, 64, 3, bias=True)
        fires = [(64, 16, 64, 64), (128, 16, 64, 64), (128, 32, 128, 128), (256, 32, 128, 128),
                 (256, 48, 192, 192), (384, 48, 192, 192), (384, 64, 256, 256), (512, 64, 256, 256)]
    for j, (i, s, e1, e3) in enumerate(fires):
        p = f"fire{j}"
        m.conv(p + ".squeeze", i, s, 1, bias=True)
        m.conv(p + ".expand1x1", s, e1, 1, bias=True)
        m.conv(p + ".expand3x3", s, e3, 3, bias=True)
    m.conv("classifier.1", 512, 1000, 1, bias=True)
    return m


def shufflenet_v2():
    m = M()
    ch = [24, 116, 232, 464, 1024]
    m.conv("conv1", 3, 24, 3, bn=True)
    inp = 24
    for si, (rep, out) in enumerate(zip([4, 8, 4], ch[1:4])):
        for u in range(rep):
            p = f"stage{si+2}.{u}"
            bf = out // 2
            if u == 0:
                m.conv(p + ".branch1.0", inp, inp, 3, groups=inp, bn=True)
                m.conv(p + ".branch1.2", inp, bf, 1, bn=True)
                m.conv(p + ".branch2.0", inp, bf, 1, bn=True)
            else:
                m.conv(p + ".branch2.0", bf, bf, 1, bn=True)
            m.conv(p + ".branch2.3", bf, bf, 3, groups=bf, bn=True)
            m.conv(p + ".branch2.5", bf, bf, 1, bn=True)
            inp = out
    m.conv("conv5", inp, 1024, 1, bn=True)
    m.linear("fc", 1024, 1000)
    return m


def vgg(cfg):
    m = M()
    c = 3
    for i, v in enumerate(cfg):
        if v == "M":
            continue
        m.conv(f"features.{i}", c, v, 3, bias=True)
        c = v
    m.linear("classifier.0", 512 * 7 * 7, 4096)
    m.linear("classifier.3", 4096, 4096)
    m.linear("classifier.6", 4096, 1000)
    return m


def alexnet():
    m = M()
    for i, (a, b_, k) in enumerate([(3, 64, 11), (64, 192, 5), (192, 384, 3), (384, 256, 3), (256, 256, 3)]):
        m.conv(f"features.{i}", a, b_, k, bias=True)
    m.linear("classifier.1", 256 * 6 * 6, 4096)
    m.linear("classifier.4", 4096, 4096)
    m.linear("classifier.6", 4096, 1000)
    return m


def efficientnet(wm, dm):
    m = M()
    adj = lambda c: make_divisible(c * wm, 8)
    cfg = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
           (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]
    m.conv("features.0", 3, adj(32), 3, bn=True)
    for si, (e, k, s, cin, cout, n) in enumerate(cfg):
        cin, cout = adj(cin), adj(cout)
        for j in range(int(math.ceil(n * dm))):
            i = cin if j == 0 else cout
            p = f"features.{si+1}.{j}"
            h = make_divisible(i * e, 8)
            if h != i:
                m.conv(p + ".expand", i, h, 1, bn=True)
            m.conv(p + ".dw", h, h, k, groups=h, bn=True)
            sq = max(1, i // 4)
            m.conv(p + ".se.fc1", h, sq, 1, bias=True)
            m.conv(p + ".se.fc2", sq, h, 1, bias=True)
            m.conv(p + ".project", h, cout, 1, bn=True)
    last_in = adj(320)
    m.conv("features.8", last_in, 4 * last_in, 1, bn=True)
    m.linear("classifier.1", 4 * last_in, 1000)
    return m


def mnasnet():
    m = M()
    m.conv("layers.0", 3, 32, 3, bn=True)
    m.conv("layers.3", 32, 32, 3, groups=32, bn=True)
    m.conv("layers.6", 32, 16, 1, bn=True)
    i = 8
    for cin, cout, k, s, e, r in [(16, 24, 3, 2, 3, 3), (24, 40, 5, 2, 3, 3), (40, 80, 5, 2, 6, 3),
                                  (80, 96, 3, 1, 6, 2), (96, 192, 5, 2, 6, 4), (192, 320, 3, 1, 6, 1)]:
        for j in range(r):
            a = cin if j == 0 else cout
            p = f"layers.{i}.{j}"
            mid = a * e
            m.conv(p + ".expand", a, mid, 1, bn=True)
            m.conv(p + ".dw", mid, mid, k, groups=mid, bn=True)
            m.conv(p + ".project", mid, cout, 1, bn=True)
        i += 1
    m.conv("layers.14", 320, 1280, 1, bn=True)
    m.linear("classifier.1", 1280, 1000)
    return m


def regnet_y_400mf():
    depth, w0, wa, wm, gw, se_ratio = 16, 48, 27.89, 2.09, 8, 0.25
    QUANT = 8
    cont = [d * wa + w0 for d in range(depth)]
    cap = [round(math.log(w / w0) / math.log(wm)) for w in cont]
    bw = [int(round(w0 * math.pow(wm, c) / QUANT) * QUANT) for c in cap]
    splits = [w != wp for w, wp in zip(bw + [0], [0] + bw)]
    sw = [w for w, t in zip(bw, splits[:-1]) if t]
    idx = [d for d, t in enumerate(splits) if t]
    sd = [b - a for a, b in zip(idx, idx[1:])]
    gws = [min(gw, w) for w in sw]
    sw = [make_divisible(w, g) for w, g in zip(sw, gws)]
    m = M()
    m.conv("stem", 3, 32, 3, bn=True)
    inp = 32
    for si, (w, d, g) in enumerate(zip(sw, sd, gws)):
        for j in range(d):
            p = f"trunk.block{si+1}.{j}"
            stride = 2 if j == 0 else 1
            if inp != w or stride != 1:
                m.conv(p + ".proj", inp, w, 1, bn=True)
            groups = w // g
            m.conv(p + ".f.a", inp, w, 1, bn=True)
            m.conv(p + ".f.b", w, w, 3, groups=groups, bn=True)
            se = int(round(se_ratio * inp))
            m.conv(p + ".f.se.fc1", w, se, 1, bias=True)
            m.conv(p + ".f.se.fc2", se, w, 1, bias=True)
            m.conv(p + ".f.c", w, w, 1, bn=True)
            inp = w
    m.linear("fc", inp, 1000)
    return m


def convnext_tiny():
    m = M()
    dims, depths = [96, 192, 384, 768], [3, 3, 9, 3]
    m.conv("features.0.0", 3, 96, 4, bias=True)
    m.ln("features.0.1", 96)
    for s, (d, n) in enumerate(zip(dims, depths)):
        for j in range(n):
            p = f"features.{2*s+1}.{j}"
            m.conv(p + ".dwconv", d, d, 7, groups=d, bias=True)
            m.ln(p + ".norm", d)
            m.linear(p + ".pwconv1", d, 4 * d)
            m.linear(p + ".pwconv2", 4 * d, d)
            m.add(p + ".layer_scale", d)
        if s < 3:
            p = f"features.{2*s+2}"
            m.ln(p + ".0", d)
            m.conv(p + ".1", d, dims[s + 1], 2, bias=True)
    m.ln("classifier.0", 768)
    m.linear("classifier.2", 768, 1000)
    return m


def vit_b_16():
    m = M()
    d = 768
    m.conv("conv_proj", 3, d, 16, bias=True)
    m.add("class_token", d)
    m.add("encoder.pos_embedding", 197 * d)
    for i in range(12):
        p = f"encoder.layers.{i}"
        m.ln(p + ".ln_1", d)
        m.add(p + ".self_attention.in_proj_weight", 3 * d * d)
        m.add(p + ".self_attention.in_proj_bias", 3 * d)
        m.linear(p + ".self_attention.out_proj", d, d)
        m.ln(p + ".ln_2", d)
        m.linear(p + ".mlp.0", d, 4 * d)
        m.linear(p + ".mlp.3", 4 * d, d)
    m.ln("encoder.ln", d)
    m.linear("heads.head", d, 1000)
    return m


def bert_base():
    m = M()
    d = 768
    m.add("embeddings.word", 30522 * d)
    m.add("embeddings.position", 512 * d)
    m.add("embeddings.token_type", 2 * d)
    m.ln("embeddings.LayerNorm", d)
    for i in range(12):
        p = f"encoder.layer.{i}"
        for n in ["query", "key", "value", "output"]:
            m.linear(p + ".attention." + n, d, d)
        m.ln(p + ".attention.LayerNorm", d)
        m.linear(p + ".intermediate", d, 4 * d)
        m.linear(p + ".output", 4 * d, d)
        m.ln(p + ".output.LayerNorm", d)
    m.linear("pooler", d, d)
    return m


A = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]
D = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
E = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]

MODELS = {
    "resnet18": lambda: resnet("basic", [2, 2, 2, 2]),
    "resnet34": lambda: resnet("basic", [3, 4, 6, 3]),
    "resnet50": lambda: resnet("bottleneck", [3, 4, 6, 3]),
    "resnet101": lambda: resnet("bottleneck", [3, 4, 23, 3]),
    "resnet152": lambda: resnet("bottleneck", [3, 8, 36, 3]),
    "resnext50_32x4d": lambda: resnet("bottleneck", [3, 4, 6, 3], 32, 4),
    "resnext101_32x8d": lambda: resnet("bottleneck", [3, 4, 23, 3], 32, 8),
    "wide_resnet50_2": lambda: resnet("bottleneck", [3, 4, 6, 3], 1, 128),
    "wide_resnet101_2": lambda: resnet("bottleneck", [3, 4, 23, 3], 1, 128),
    "densenet121": lambda: densenet(32, [6, 12, 24, 16], 64),
    "densenet161": lambda: densenet(48, [6, 12, 36, 24], 96),
    "densenet169": lambda: densenet(32, [6, 12, 32, 32], 64),
    "densenet201": lambda: densenet(32, [6, 12, 48, 32], 64),
    "mobilenet_v2": mobilenet_v2,
    "mobilenet_v3_large": lambda: mobilenet_v3(False),
    "mobilenet_v3_small": lambda: mobilenet_v3(True),
    "inception_v3": inception_v3,
    "googlenet": googlenet,
    "squeezenet1_0": lambda: squeezenet("1_0"),
    "squeezenet1_1": lambda: squeezenet("1_1"),
    "shufflenet_v2_x1_0": shufflenet_v2,
    "vgg11": lambda: vgg(A),
    "vgg16": lambda: vgg(D),
    "vgg19": lambda: vgg(E),
    "alexnet": alexnet,
    "efficientnet_b0": lambda: efficientnet(1.0, 1.0),
    "efficientnet_b4": lambda: efficientnet(1.4, 1.8),
    "mnasnet1_0": mnasnet,
    "regnet_y_400mf": regnet_y_400mf,
    "convnext_tiny": convnext_tiny,
    "vit_b_16": vit_b_16,
    "bert_base": bert_base,
}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    bad = 0
    for name, f in MODELS.items():
        m = f()
        got = m.params / 1e6
        want = float(TABLE[name])
        tol = 0.5 * 10 ** -len(TABLE[name].split(".")[1]) + 1e-9  # half the table's last digit
        ok = abs(got - want) <= tol
        bad += not ok
        print(f"{name:20s} params {got:8.3f} M  table {want:8.2f}  tensors {len(m.t):4d}  {'ok' if ok else 'MISMATCH'}")
        with open(os.path.join(here, name + ".txt"), "w") as fh:
            fh.write(f"# {name}: weight tensors as exported to ONNX (fp32 bytes); written by gen.py\n")
            for n, k in m.t:
                fh.write(f"{n} {4 * k}\n")
    if bad:
        sys.exit(f"{bad} models do not match the table")


if __name__ == "__main__":
    main()
