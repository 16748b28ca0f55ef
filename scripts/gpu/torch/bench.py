#!/usr/bin/python3
"""Time PyTorch on the zoo, one request at a time: the baseline of issue 10.

usage: bench.py --models resnet50,vgg16 --batches 1,2,4,8,16 --precision fp32|tf32|fp16
                --modes eager,graph --iters N --gaps-ms 0,1,5,20 --device cuda
                --out results.json [--seed 0] [--warmup 20] [--gap-iters N] [--power]

For each model x batch x mode x gap it times N consecutive runs, one at a time, as a server runs
them: a CUDA event is recorded before and after each run, then the host waits for the second one
(the method of ../../shared/reference/anchors-h100.md). With a gap, the host busy-waits that long
on its monotonic clock after each run's end before starting the next, so the GPU sits idle for the
gap (what a server sees between requests; clocks are not locked and fall when idle).

Models are built with scripts/zoo/export.py's build(name, seed), imported, so the weights are the
ones the zoo exported to ONNX for clockwork. eval(), torch.inference_mode(), cudnn.benchmark=True.
Precision: fp32 = TF32 disabled for matmul and cuDNN; tf32 = TF32 allowed for both; fp16 = model
and input in half. Modes: eager = the module call; graph = the call captured once with
torch.cuda.CUDAGraph after warm-up (on a side stream, as PyTorch documents) and replayed.
The input is the same random tensor (seed+1) for every run; its upload is not timed.

Output: --out gets one JSON object per line and row: {model, batch, precision, mode, gap_ms, n,
p50_us, p99_us, p999_us, p9999_us, max_us, mean_us, p9999_over_p50, power_w, power_max_w,
sm_mhz, device, torch, timer, error}; a table goes to stdout. Quantiles are nearest-rank over the
N runs (so p99.99 of 1,000 runs is the max). With --power, nvidia-smi samples power draw and SM
clock every 50 ms during each row (mean and max reported; null when nvidia-smi is absent), and
first for 2 s of the idle GPU (a row with model "_idle").
On --device cpu (for testing without a GPU) runs are timed with the host clock and graph mode is
reported as unsupported.
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time

import torch

sys.dont_write_bytecode = True  # importing the zoo script must leave no __pycache__ in the tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "zoo"))
import export as zoo  # noqa: E402  (scripts/zoo/export.py: build(name, seed), image_size(name))


def quantile(sorted_v, q):
    """Nearest-rank quantile of a sorted list."""
    if not sorted_v:
        return float("nan")
    return sorted_v[min(len(sorted_v) - 1, max(0, math.ceil(q * len(sorted_v)) - 1))]


def set_precision(precision):
    tf32 = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = True


def busy_wait_until(t_ns):
    while time.perf_counter_ns() < t_ns:
        pass


class PowerSampler:
    """nvidia-smi in loop mode during one row: power draw (W) and SM clock (MHz)."""

    def __init__(self, gpu_index, period_ms=50):
        self.cmd = ["nvidia-smi", "-i", str(gpu_index), "--query-gpu=power.draw,clocks.sm",
                    "--format=csv,noheader,nounits", f"--loop-ms={period_ms}"]
        self.samples = []
        self.proc = None
        self.reader = None

    def __enter__(self):
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        time.sleep(0.2)  # nvidia-smi's start-up; the row starts once it samples
        return self

    def _read(self):
        for line in self.proc.stdout:
            parts = [p.strip() for p in line.split(",")]
            try:
                self.samples.append((float(parts[0]), float(parts[1])))
            except (ValueError, IndexError):
                pass  # "[N/A]" or a partial line

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=5)
        self.reader.join(timeout=5)

    def summary(self):
        if not self.samples:
            return None, None, None
        p = [s[0] for s in self.samples]
        c = [s[1] for s in self.samples]
        return sum(p) / len(p), max(p), sum(c) / len(c)


MODES = ("eager", "graph", "eager+io", "graph+io")


def make_runner(m, x, mode, device):
    """Returns fn() that runs the model once (asynchronously on CUDA). The +io modes also copy the
    input in from pinned host memory and the output back (an end-to-end INFER)."""
    base = mode.removesuffix("+io")
    if base not in ("eager", "graph") or mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; want one of {', '.join(MODES)}")
    if base == "eager":
        run = lambda: m(x)  # noqa: E731
    else:
        if device.type != "cuda":
            raise RuntimeError("graph mode needs --device cuda")
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):
                m(x)
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(g):
                y = m(x)
        except RuntimeError as e:  # capture under inference_mode refused: capture under no_grad
            print(f"graph capture under inference_mode failed ({str(e).splitlines()[0]}); capturing under no_grad", file=sys.stderr)
            torch.cuda.synchronize()
            g = torch.cuda.CUDAGraph()
            with torch.inference_mode(False), torch.no_grad(), torch.cuda.graph(g):
                y = m(x)
        torch.cuda.synchronize()

        def run():
            g.replay()
            return y
    if not mode.endswith("+io"):
        return run
    pin = device.type == "cuda"
    host_in = torch.empty(x.shape, dtype=x.dtype, pin_memory=pin).copy_(x)
    host_out = torch.empty(run().shape, dtype=x.dtype, pin_memory=pin)

    def run_io():
        x.copy_(host_in, non_blocking=True)
        host_out.copy_(run(), non_blocking=True)
    return run_io


def load_runners(m, device):
    """LOAD of the model's weights from pinned host memory: {"load-flat": one copy of all the
    weight bytes, "load-tensors": one copy per parameter and buffer (what module.to() does)}, and
    the bytes."""
    ts = [t for t in list(m.parameters()) + list(m.buffers())]
    nbytes = sum(t.numel() * t.element_size() for t in ts)
    pin = device.type == "cuda"
    host_flat = torch.empty(nbytes, dtype=torch.uint8, pin_memory=pin)
    dev_flat = torch.empty(nbytes, dtype=torch.uint8, device=device)
    hosts = [torch.empty(t.shape, dtype=t.dtype, pin_memory=pin).copy_(t) for t in ts]

    def tensors():
        for t, h in zip(ts, hosts):
            t.copy_(h, non_blocking=True)
    return {"load-flat": lambda: dev_flat.copy_(host_flat, non_blocking=True), "load-tensors": tensors}, nbytes


def time_runs(fn, n, gap_ns, device):
    """n runs one at a time; returns per-run times in µs."""
    out = []
    if device.type == "cuda":
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
        for i in range(n):
            starts[i].record()
            fn()
            ends[i].record()
            ends[i].synchronize()
            if gap_ns:
                busy_wait_until(time.perf_counter_ns() + gap_ns)
        out = [s.elapsed_time(e) * 1000.0 for s, e in zip(starts, ends)]
    else:
        for _ in range(n):
            t0 = time.perf_counter_ns()
            fn()
            out.append((time.perf_counter_ns() - t0) / 1000.0)
            if gap_ns:
                busy_wait_until(time.perf_counter_ns() + gap_ns)
    return out


def row_stats(times):
    v = sorted(times)
    p50 = quantile(v, 0.5)
    return {"n": len(v), "p50_us": round(p50, 2), "p99_us": round(quantile(v, 0.99), 2),
            "p999_us": round(quantile(v, 0.999), 2), "p9999_us": round(quantile(v, 0.9999), 2),
            "max_us": round(v[-1], 2), "mean_us": round(sum(v) / len(v), 2),
            "p9999_over_p50": round(quantile(v, 0.9999) / p50, 4) if p50 > 0 else None}


def csv_list(s, conv=str):
    return [conv(x) for x in s.split(",") if x.strip() != ""]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", required=True, help="comma-separated torchvision architectures (as scripts/zoo/export.py)")
    ap.add_argument("--batches", default="1,2,4,8,16", help="comma-separated batch sizes")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "tf32", "fp16"])
    ap.add_argument("--modes", default="eager,graph", help="comma-separated: eager, graph, eager+io, graph+io (+io: with the input copied in and the output out)")
    ap.add_argument("--load", type=int, default=0, help="also time N LOADs of each model's weights from pinned host memory (rows load-flat, load-tensors; batch 0)")
    ap.add_argument("--iters", type=int, default=1000, help="timed runs per row (back to back)")
    ap.add_argument("--gap-iters", type=int, default=0, help="timed runs per row with a gap > 0 (0: --iters); gap rows take iters x gap")
    ap.add_argument("--gaps-ms", default="0", help="comma-separated idle gaps between runs, ms (0: back to back)")
    ap.add_argument("--warmup", type=int, default=20, help="untimed runs before each mode's rows (and before capture)")
    ap.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (cpu: host-clock timing, for testing)")
    ap.add_argument("--out", required=True, help="JSON-lines results file (overwritten)")
    ap.add_argument("--seed", type=int, default=0, help="weight seed, as the zoo's (input: seed+1)")
    ap.add_argument("--power", action="store_true", help="sample nvidia-smi power draw and SM clock during each row")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    a = ap.parse_args()

    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("bench.py: --device cuda but torch.cuda.is_available() is false; use --device cpu to test without a GPU")
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    if a.iters < 1 or a.warmup < 0 or a.gap_iters < 0:
        sys.exit("bench.py: --iters must be >= 1, --warmup and --gap-iters >= 0")
    models, batches = csv_list(a.models), csv_list(a.batches, int)
    modes, gaps = csv_list(a.modes), csv_list(a.gaps_ms, float)
    for mode in modes:
        if mode not in MODES:
            sys.exit(f"bench.py: unknown mode {mode!r}; want some of {', '.join(MODES)}")
    if any(b < 1 for b in batches) or any(g < 0 for g in gaps):
        sys.exit("bench.py: batches must be >= 1 and gaps >= 0")
    power = a.power and device.type == "cuda" and shutil.which("nvidia-smi") is not None
    if a.power and not power:
        print("bench.py: --power: no nvidia-smi (or not on CUDA); power columns are null", file=sys.stderr)
    gpu_index = device.index if device.index is not None else 0
    set_precision(a.precision)
    dtype = torch.float16 if a.precision == "fp16" else torch.float32
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    timer = "cuda-events" if device.type == "cuda" else "host-clock"
    # Read back, so each row shows what was in force (torch >= 2.9 warns that these flags will give
    # way to fp32_precision; the brief and anchors-h100.md use them, and mixing the two APIs fails).
    tf32_flags = {"tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32), "tf32_cudnn": bool(torch.backends.cudnn.allow_tf32)}

    fout = open(a.out, "w")
    hdr = f"{'model':<20} {'b':>3} {'prec':<5} {'mode':<12} {'gap':>5} {'n':>6} {'p50 µs':>10} {'p99':>10} {'p99.99':>10} {'max':>10} {'p9999/p50':>9} {'W':>6}"
    print(hdr, flush=True)
    if power:
        # The idle GPU's draw, for the cost of keeping it busy between requests.
        torch.cuda.synchronize(device)
        with PowerSampler(gpu_index) as ps:
            time.sleep(2)
        pw = ps.summary()
        row = {"model": "_idle", "device": dev_name, "precision": a.precision, "n": len(ps.samples),
               "power_w": None if pw[0] is None else round(pw[0], 1),
               "power_max_w": None if pw[1] is None else round(pw[1], 1), "sm_mhz": None if pw[2] is None else round(pw[2])}
        fout.write(json.dumps(row) + "\n")
        print(f"idle GPU for 2 s: {row['power_w']} W mean, {row['power_max_w']} W max, SM {row['sm_mhz']} MHz", flush=True)
    for name in models:
        try:  # outside inference_mode: the zoo's own construction, so the weights are the zoo's
            m = zoo.build(name, a.seed).to(device=device, dtype=dtype)
        except (Exception, SystemExit) as e:
            print(f"{name}: cannot build: {e}", file=sys.stderr)
            fout.write(json.dumps({"model": name, "precision": a.precision, "error": f"cannot build: {e}"}) + "\n")
            continue
        if a.load > 0:
            with torch.no_grad():
                runners, nbytes = load_runners(m, device)
                for mode, fn in runners.items():
                    base = {"model": name, "batch": 0, "precision": a.precision, "mode": mode, "gap_ms": 0.0,
                            "device": dev_name, "torch": torch.__version__, "timer": timer, "bytes": nbytes}
                    time_runs(fn, max(1, a.warmup // 4), 0, device)
                    row = dict(base, **row_stats(time_runs(fn, a.load, 0, device)))
                    row["gb_per_s"] = round(nbytes / (row["p50_us"] * 1e3), 2)
                    fout.write(json.dumps(row) + "\n")
                    print(f"{name:<20} {0:>3} {a.precision:<5} {mode:<12} {0:>5g} {row['n']:>6} {row['p50_us']:>10.1f} "
                          f"{row['p99_us']:>10.1f} {row['p9999_us']:>10.1f} {row['max_us']:>10.1f} {row['p9999_over_p50']:>9.4f} "
                          f"{nbytes / 2**20:.1f} MiB at {row['gb_per_s']} GB/s", flush=True)
                del runners
        with torch.inference_mode():
            s = zoo.image_size(name)
            for b in batches:
                g = torch.Generator().manual_seed(a.seed + 1)
                x = torch.randn(b, 3, s, s, generator=g).to(device=device, dtype=dtype)
                for mode in modes:
                    base = {"model": name, "batch": b, "precision": a.precision, "mode": mode,
                            "device": dev_name, "torch": torch.__version__, "timer": timer, **tf32_flags}
                    try:
                        for _ in range(a.warmup):
                            m(x)
                        fn = make_runner(m, x, mode, device)
                        time_runs(fn, a.warmup, 0, device)
                    except Exception as e:
                        for gap in gaps:
                            fout.write(json.dumps(dict(base, gap_ms=gap, error=str(e).split("\n")[0])) + "\n")
                        print(f"{name:<20} {b:>3} {a.precision:<5} {mode:<12} error: {str(e).splitlines()[0] if str(e) else e!r}", flush=True)
                        continue
                    for gap in gaps:
                        n = a.iters if gap == 0 or a.gap_iters == 0 else a.gap_iters
                        pw = (None, None, None)
                        if power:
                            with PowerSampler(gpu_index) as ps:
                                time_runs(fn, a.warmup, 0, device)  # busy again after the sampler's start
                                times = time_runs(fn, n, int(gap * 1e6), device)
                            pw = ps.summary()
                        else:
                            time_runs(fn, a.warmup, 0, device)  # busy again after the previous row's report
                            times = time_runs(fn, n, int(gap * 1e6), device)
                        row = dict(base, gap_ms=gap, **row_stats(times))
                        row["power_w"] = None if pw[0] is None else round(pw[0], 1)
                        row["power_max_w"] = None if pw[1] is None else round(pw[1], 1)
                        row["sm_mhz"] = None if pw[2] is None else round(pw[2])
                        fout.write(json.dumps(row) + "\n")
                        fout.flush()
                        w = "-" if row["power_w"] is None else f"{row['power_w']:.0f}"
                        print(f"{name:<20} {b:>3} {a.precision:<5} {mode:<12} {gap:>5g} {row['n']:>6} {row['p50_us']:>10.1f} "
                              f"{row['p99_us']:>10.1f} {row['p9999_us']:>10.1f} {row['max_us']:>10.1f} {row['p9999_over_p50']:>9.4f} {w:>6}",
                              flush=True)
                    del fn
                del x
            del m
            if device.type == "cuda":
                torch.cuda.empty_cache()
    fout.close()


if __name__ == "__main__":
    main()
