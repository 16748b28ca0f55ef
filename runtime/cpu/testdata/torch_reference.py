#!/usr/bin/python3
"""PyTorch reference outputs for runtime/cpu's model equivalence test.

usage: torch_reference.py OUTDIR MODEL [MODEL ...]

For each torchvision MODEL: build it with random weights (torch.manual_seed(0), weights=None),
BatchNorm statistics calibrated on one random batch, in eval mode; draw 8 random inputs of 3x224x224 (299x299 for inception_v3; seed 1); write to OUTDIR/MODEL/:
  model.onnx     torch.onnx.export, opset 13, dynamic batch axis (as the zoo exports)
  input.f32      the 8 inputs, float32 little-endian, NCHW
  output.f32     PyTorch's outputs on CPU in fp32, [8, classes]
  meta.json      shapes, versions
Runs on Debian's python3-torchvision (torch 1.13); needs no network.
"""
import json
import os
import sys

import torch
import torchvision

BATCH = 8


def size(name):
    return 299 if name == "inception_v3" else 224


def build(name):
    torch.manual_seed(0)
    kw = {"weights": None}
    if name in ("googlenet", "inception_v3"):
        kw.update(aux_logits=False, init_weights=True)
    m = getattr(torchvision.models, name)(**kw)
    # ViT initializes its classifier to zero, so every output would be 0: give all-zero weight
    # matrices small random values instead.
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() >= 2 and not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    # Calibrate BatchNorm statistics on one random batch (seed 2): with the default running
    # stats (mean 0, var 1) random-weight networks collapse to one class for every input,
    # which would make the top-1 check trivial.
    bns = [b for b in m.modules() if isinstance(b, torch.nn.modules.batchnorm._BatchNorm)]
    if bns:
        for b in bns:
            b.reset_running_stats()
            b.momentum = None  # cumulative average: after one batch, exactly its statistics
        g = torch.Generator().manual_seed(2)
        m.train()
        with torch.no_grad():
            m(torch.randn(BATCH, 3, size(name), size(name), generator=g))
    return m.eval()


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out = sys.argv[1]
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    for name in sys.argv[2:]:
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        m = build(name)
        g = torch.Generator().manual_seed(1)
        x = torch.randn(BATCH, 3, size(name), size(name), generator=g)
        with torch.no_grad():
            y = m(x)
        torch.onnx.export(m, x[:1], os.path.join(d, "model.onnx"), opset_version=13,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                          do_constant_folding=True)
        x.numpy().astype("<f4").tofile(os.path.join(d, "input.f32"))
        y.numpy().astype("<f4").tofile(os.path.join(d, "output.f32"))
        with open(os.path.join(d, "meta.json"), "w") as f:
            json.dump({"model": name, "input": list(x.shape), "output": list(y.shape),
                       "torch": torch.__version__, "torchvision": torchvision.__version__}, f)
        print(name, "ok", flush=True)


if __name__ == "__main__":
    main()
