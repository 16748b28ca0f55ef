#!/usr/bin/python3
"""Export torchvision architectures with random weights to ONNX: the clockwork model zoo.

usage: export.py --out DIR --models a,b,c [--opset 13] [--references N] [--seed S]

Driven by `cw tools zoo` (runtime/model reads what it writes; docs/model.md describes the
files). For each MODEL it writes DIR/MODEL/:
  model.onnx        torch.onnx.export, dynamic batch axis, input "input" [N,3,H,W], output
                    "output" [N,classes]; model.onnx.data too when the exporter stores weights
                    outside (torch 2.x dynamo exporter)
  input.f32         with --references N: N random inputs (seed+1), float32 little-endian, NCHW
  output.f32        PyTorch's fp32 outputs on CPU for them, [N, classes], little-endian
  meta.json         {"model", "input": [N,3,H,W], "output": [N,classes], "torch", "torchvision",
                    "opset", "params"}
and DIR/manifest.json: a list of {"name", "file", "files": {name: sha256}, "sha256" (of
model.onnx), "bytes", "opset", "params", "input", "torch", "torchvision"}, merged with an
existing manifest (entries of other models are kept).

Weights: torch.manual_seed(seed), weights=None (random init, as torchvision does it); all-zero
weight matrices (ViT's head) get small random values; BatchNorm running statistics are
calibrated on one random batch (seed+2), because with the default mean 0 / var 1 random
networks map every input to the same class, which would make top-1 checks meaningless.
Works with Debian's python3-torchvision (torch 1.13) and pip's torch 2.x; needs no network.
"""
import argparse
import hashlib
import inspect
import json
import os
import sys

import torch
import torchvision

CALIBRATION_BATCH = 8


def image_size(name):
    return 299 if name == "inception_v3" else 224


def build(name, seed):
    torch.manual_seed(seed)
    kw = {"weights": None}
    if name in ("googlenet", "inception_v3"):
        kw.update(aux_logits=False, init_weights=True)
    ctor = getattr(torchvision.models, name, None)
    if ctor is None or not callable(ctor):
        sys.exit(f"export.py: torchvision {torchvision.__version__} has no model {name!r}")
    m = ctor(**kw)
    g = torch.Generator().manual_seed(seed + 3)
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() >= 2 and not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    bns = [b for b in m.modules() if isinstance(b, torch.nn.modules.batchnorm._BatchNorm)]
    if bns:
        for b in bns:
            b.reset_running_stats()
            b.momentum = None  # cumulative average: after one batch, exactly its statistics
        g = torch.Generator().manual_seed(seed + 2)
        s = image_size(name)
        m.train()
        with torch.no_grad():
            m(torch.randn(CALIBRATION_BATCH, 3, s, s, generator=g))
    return m.eval()


def export(m, x, path, opset, dynamo=False):
    """Exports with a dynamic batch axis. torch 1.x/2.x TorchScript exporter where available
    (unless dynamo); the dynamo exporter (torch >= 2.9 default) otherwise."""
    kw = dict(input_names=["input"], output_names=["output"], opset_version=opset,
              do_constant_folding=True)
    params = inspect.signature(torch.onnx.export).parameters
    if "dynamo" in params:
        try:
            if dynamo:
                raise RuntimeError("--dynamo given")
            torch.onnx.export(m, (x,), path, dynamo=False,
                              dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, **kw)
            return
        except Exception as e:  # legacy exporter removed or failing: use dynamo
            print(f"  legacy exporter failed ({e}); using dynamo", file=sys.stderr)
        batch = torch.export.Dim("batch", min=1, max=1024)
        kw.pop("do_constant_folding")
        torch.onnx.export(m, (x,), path, dynamo=True, dynamic_shapes=({0: batch},),
                          external_data=True, **kw)
        return
    torch.onnx.export(m, x, path, dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, **kw)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def onnx_opset(path, default):
    try:
        import onnx
        m = onnx.load(path, load_external_data=False)
        for o in m.opset_import:
            if o.domain in ("", "ai.onnx"):
                return o.version
    except Exception:
        pass
    return default


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--models", required=True, help="comma-separated torchvision model names")
    ap.add_argument("--opset", type=int, default=13)
    ap.add_argument("--references", type=int, default=0, help="random inputs to write reference outputs for")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dynamo", action="store_true", help="torch 2.x: use the torch.export-based exporter (weights in model.onnx.data; use --opset 18)")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(max(1, a.threads))
    os.makedirs(a.out, exist_ok=True)
    mpath = os.path.join(a.out, "manifest.json")
    manifest = {}
    if os.path.exists(mpath):
        with open(mpath) as f:
            manifest = {e["name"]: e for e in json.load(f)}
    for name in [n for n in a.models.split(",") if n]:
        d = os.path.join(a.out, name)
        os.makedirs(d, exist_ok=True)
        for stale in ("model.onnx", "model.onnx.data", "input.f32", "output.f32"):
            if os.path.exists(os.path.join(d, stale)):
                os.remove(os.path.join(d, stale))
        m = build(name, a.seed)
        s = image_size(name)
        path = os.path.join(d, "model.onnx")
        export(m, torch.zeros(1, 3, s, s), path, a.opset, a.dynamo)
        params = sum(p.numel() for p in m.parameters())
        meta = {"model": name, "torch": torch.__version__, "torchvision": torchvision.__version__,
                "opset": onnx_opset(path, a.opset), "params": params, "input": [1, 3, s, s]}
        if a.references > 0:
            g = torch.Generator().manual_seed(a.seed + 1)
            x = torch.randn(a.references, 3, s, s, generator=g)
            with torch.no_grad():
                y = m(x)
            x.numpy().astype("<f4").tofile(os.path.join(d, "input.f32"))
            y.numpy().astype("<f4").tofile(os.path.join(d, "output.f32"))
            meta["input"], meta["output"] = list(x.shape), list(y.shape)
        with open(os.path.join(d, "meta.json"), "w") as f:
            json.dump(meta, f, indent=1)
        files = {f: sha256(os.path.join(d, f)) for f in sorted(os.listdir(d))
                 if f.startswith("model.onnx")}
        manifest[name] = {"name": name, "file": f"{name}/model.onnx", "files": files,
                          "sha256": files["model.onnx"],
                          "bytes": sum(os.path.getsize(os.path.join(d, f)) for f in files),
                          "opset": meta["opset"], "params": params, "input": [1, 3, s, s],
                          "torch": torch.__version__, "torchvision": torchvision.__version__}
        with open(mpath, "w") as f:
            json.dump(sorted(manifest.values(), key=lambda e: e["name"]), f, indent=1)
        print(f"{name}: opset {meta['opset']}, {params} params, {manifest[name]['bytes']} bytes", flush=True)


if __name__ == "__main__":
    main()
