#!/usr/bin/python3
"""A plain PyTorch inference server replaying an arrival trace: the baseline of issue 11.

usage: baseline_server.py --trace trace.tsv --out DIR [--device cuda] [--precision fp32]
                          [--gpu-mem-mib N] [--drop-late] [--arch-map a=b,...] [--seed 0]

What a straightforward server does, in one Python process:
  * every model instance named in the trace keeps a host copy of its weights, one flat buffer
    per instance, page-locked (cudaHostRegister) when on CUDA, so a LOAD is one DMA;
  * a FIFO queue; one request at a time, batch 1, eager PyTorch (eval, inference_mode,
    cudnn.benchmark);
  * models are moved to the GPU on demand: if an instance is not resident, least recently used
    instances are evicted until its weights fit in --gpu-mem-mib (the weights budget; activations
    and workspace come from the rest of the GPU), then its weights are copied in. A GPU copy of an
    evicted instance of the same architecture is reused, so only the weights move.
Arrivals come from a generator thread that puts each request on the queue at its scheduled time
(open loop). Latency is measured from the scheduled arrival, so a late generator or a busy server
counts against the server (no coordinated omission). A request whose SLO has passed when it is
dequeued is still executed and counts as missed (outcome "late"), as a naive server does, unless
--drop-late (outcome "dropped", not executed).

Input: the TSV of `cw tools trace` ('#' comments, header arrival_ns/instance/arch/slo_ns).
Architectures are torchvision names, built with scripts/zoo/export.py's build(name, seed) so the
weights match the zoo's ONNX files; Clockwork profile names are mapped where the mapping is
obvious (resnet50_v2 -> resnet50, inceptionv3 -> inception_v3), others need --arch-map.
Each request's input is one random image per architecture (seed+1), copied host -> GPU from
pinned memory per request, and its output copied back (--no-io skips both).

Output (DIR, created):
  requests.tsv   arrival_ns start_ns end_ns latency_ns slo_ns instance arch outcome within_slo
                 cold load_ns exec_ns; times in ns from the run's start; one line per trace line,
                 in trace order; outcome ok (within SLO), late, dropped, error, not_run
  summary.json   requests, executed, within_slo, goodput_rps, slo_attainment, latency_ms
                 {p50,p99,p99.9,p99.99,max,mean} of executed requests, cold_loads, evictions,
                 load_ms {p50,p99,max,mean}, exec_ms, and the configuration
and a summary table on stdout.
"""
import argparse
import collections
import copy
import json
import math
import os
import queue
import re
import sys
import threading
import time

import torch

sys.dont_write_bytecode = True  # importing the zoo script must leave no __pycache__ in the tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "zoo"))
import export as zoo  # noqa: E402  (scripts/zoo/export.py: build(name, seed), image_size(name))

TRACE_HEADER = ["arrival_ns", "instance", "arch", "slo_ns"]
REQUESTS_HEADER = "arrival_ns\tstart_ns\tend_ns\tlatency_ns\tslo_ns\tinstance\tarch\toutcome\twithin_slo\tcold\tload_ns\texec_ns\n"
# Largest difference from the host fp32 reference, relative to its largest magnitude, checked at
# warm-up (a loaded instance must compute what zoo.build's module computes).
TOLERANCE = {"fp32": 1e-3, "tf32": 1e-2, "fp16": 5e-2}
ALIGN = 256  # byte alignment of each tensor inside an instance's flat weight buffer


class Request:
    __slots__ = ("i", "arrival", "instance", "arch", "slo", "enq", "start", "end", "outcome", "cold", "load_ns", "exec_ns")

    def __init__(self, i, arrival, instance, arch, slo):
        self.i, self.arrival, self.instance, self.arch, self.slo = i, arrival, instance, arch, slo
        self.enq = self.start = self.end = -1
        self.outcome = "not_run"
        self.cold = False
        self.load_ns = self.exec_ns = 0


def read_trace(path):
    reqs = []
    header = False
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            cols = line.split("\t")
            if not header:
                if cols != TRACE_HEADER:
                    raise ValueError(f"{path}:{n}: header {cols}; want {TRACE_HEADER} (write traces with `cw tools trace`)")
                header = True
                continue
            if len(cols) != 4:
                raise ValueError(f"{path}:{n}: {len(cols)} columns; want 4 ({', '.join(TRACE_HEADER)})")
            try:
                at, slo = int(cols[0]), int(cols[3])
            except ValueError:
                raise ValueError(f"{path}:{n}: arrival_ns {cols[0]!r} and slo_ns {cols[3]!r} must be integers") from None
            if at < 0 or slo <= 0 or not cols[1] or not cols[2]:
                raise ValueError(f"{path}:{n}: want arrival_ns >= 0, slo_ns > 0 and names; got {line!r}")
            reqs.append(Request(len(reqs), at, cols[1], cols[2], slo))
    if not header:
        raise ValueError(f"{path}: no header line; want the columns {', '.join(TRACE_HEADER)}")
    reqs.sort(key=lambda r: r.arrival)  # stable: trace order among equal times
    for i, r in enumerate(reqs):
        r.i = i
    return reqs


_register_failed = False


def clear_cuda_error():
    """Takes the error a failed runtime call left behind, so the next kernel launch check does not
    report it as its own."""
    f = getattr(torch.cuda.cudart(), "cudaGetLastError", None)
    if f is not None:
        f()
    try:
        torch.zeros(1, device="cuda").add_(1)
        torch.cuda.synchronize()
    except RuntimeError:
        pass


def torchvision_name(arch, explicit):
    """The torchvision architecture for a trace's arch, or None."""
    import torchvision
    if arch in explicit:
        return explicit[arch]
    if callable(getattr(torchvision.models, arch, None)):
        return arch
    cands = [re.sub(r"_v\d[a-z]?$", "", arch), arch.replace("inceptionv3", "inception_v3")]
    for c in cands:
        if c != arch and callable(getattr(torchvision.models, c, None)):
            return c
    return None


def percentiles_ms(values_ns, qs=((0.5, "p50"), (0.99, "p99"), (0.999, "p99.9"), (0.9999, "p99.99"))):
    if not values_ns:
        return {}
    v = sorted(values_ns)
    out = {k: round(v[min(len(v) - 1, max(0, math.ceil(q * len(v)) - 1))] / 1e6, 4) for q, k in qs}
    out["max"] = round(v[-1] / 1e6, 4)
    out["mean"] = round(sum(v) / len(v) / 1e6, 4)
    return out


class Arch:
    """One architecture: a weightless skeleton and the layout of its flat weight buffer."""

    def __init__(self, name, tv_name, seed, dtype, device):
        self.name, self.tv_name = name, tv_name
        m = zoo.build(tv_name, seed).eval()
        s = zoo.image_size(tv_name)
        g = torch.Generator().manual_seed(seed + 1)
        x = torch.randn(1, 3, s, s, generator=g)
        with torch.inference_mode():
            self.reference = m(x)  # fp32 on the host: what a loaded instance must compute
        m = m.to(dtype=dtype)
        for p in m.parameters():
            p.requires_grad_(False)
        self.skeleton = copy.deepcopy(m).to("meta")
        self.slots = []  # (module path, kind, key, shape, dtype, byte offset, bytes)
        off = 0
        for path, mod in m.named_modules():
            for kind, d in (("p", mod._parameters), ("b", mod._buffers)):
                for key, t in d.items():
                    if t is None:
                        continue
                    nb = t.numel() * t.element_size()
                    self.slots.append((path, kind, key, tuple(t.shape), t.dtype, off, nb))
                    off += (nb + ALIGN - 1) // ALIGN * ALIGN
        self.bytes = off
        # The weights every instance starts from, in the flat layout.
        self.template = torch.empty(self.bytes, dtype=torch.uint8)
        mods = dict(m.named_modules())
        for path, kind, key, v in self.views(self.template):
            v.copy_((mods[path]._parameters if kind == "p" else mods[path]._buffers)[key])
        self.host_in = x.to(dtype)
        self.dev_in = self.host_in.to(device)
        self.host_out = None
        if device.type == "cuda":
            self.host_in = self.host_in.pin_memory()

    def views(self, flat):
        """(path, kind, key, tensor view of flat) for every weight."""
        for path, kind, key, shape, dt, off, nb in self.slots:
            yield path, kind, key, flat[off:off + nb].view(dt).view(shape)

    def host_copy(self, pin):
        """A new flat host buffer holding the template's weights; pinned when pin."""
        flat = self.template.clone()
        if not pin:
            return flat, False
        global _register_failed
        if not _register_failed:
            try:
                rc = int(torch.cuda.cudart().cudaHostRegister(flat.data_ptr(), self.bytes, 0))
            except (AttributeError, RuntimeError, TypeError) as e:
                rc = repr(e)
            if rc == 0:
                return flat, True
            _register_failed = True
            print(f"cudaHostRegister of {self.bytes} bytes failed ({rc}); pinning the rest with pin_memory(), "
                  "which rounds sizes up (check `ulimit -l`)", file=sys.stderr)
            clear_cuda_error()
        return flat.pin_memory(), False  # the caching host allocator: may round up, but pinned

    def device_module(self, device):
        """A new module of this architecture whose weights are views of one flat device buffer."""
        flat = torch.empty(self.bytes, dtype=torch.uint8, device=device)
        m = copy.deepcopy(self.skeleton)
        mods = dict(m.named_modules())
        for path, kind, key, v in self.views(flat):
            if kind == "p":
                mods[path]._parameters[key] = torch.nn.Parameter(v, requires_grad=False)
            else:
                mods[path]._buffers[key] = v
        m.flat = flat
        m.arch = self.name
        return m


class Server:
    def __init__(self, archs, hosts, budget, device):
        self.archs, self.hosts, self.budget, self.device = archs, hosts, budget, device
        self.resident = collections.OrderedDict()  # instance -> module, least recently used first
        self.held = 0
        self.evictions = 0
        self.loads = []  # ns per cold load

    def sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def acquire(self, inst, arch):
        """The resident module of inst, loading it first if needed; (module, load_ns or 0)."""
        m = self.resident.get(inst)
        if m is not None:
            self.resident.move_to_end(inst)
            return m, 0
        a = self.archs[arch]
        t0 = time.perf_counter_ns()
        if a.bytes > self.budget:
            raise MemoryError(f"{inst}: {a.bytes >> 20} MiB of weights exceed the budget of {self.budget >> 20} MiB; raise --gpu-mem-mib")
        while self.held + a.bytes > self.budget:
            victim, vm = self.resident.popitem(last=False)
            self.evictions += 1
            if vm.arch == arch:  # same layout: reuse its device buffer
                m = vm
                break
            self.held -= self.archs[vm.arch].bytes
            del vm
        if m is None:
            try:
                m = a.device_module(self.device)
            except torch.cuda.OutOfMemoryError if hasattr(torch.cuda, "OutOfMemoryError") else RuntimeError:
                torch.cuda.empty_cache()
                m = a.device_module(self.device)
            self.held += a.bytes
        m.flat.copy_(self.hosts[inst], non_blocking=True)
        self.sync()
        self.resident[inst] = m
        dt = time.perf_counter_ns() - t0
        self.loads.append(dt)
        return m, dt

    def infer(self, m, arch, io):
        a = self.archs[arch]
        if io:
            a.dev_in.copy_(a.host_in, non_blocking=True)
        y = m(a.dev_in)
        if io:
            if a.host_out is None:
                a.host_out = torch.empty(y.shape, dtype=y.dtype, pin_memory=self.device.type == "cuda")
            a.host_out.copy_(y, non_blocking=True)
        self.sync()
        return y

    def evict_all(self):
        self.resident.clear()
        self.held = 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trace", required=True, help="arrival trace TSV from `cw tools trace`")
    ap.add_argument("--out", required=True, help="directory for requests.tsv and summary.json (created)")
    ap.add_argument("--device", default="cuda", help="cuda, cuda:N, or cpu (for testing: the 'GPU' is host memory)")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "tf32", "fp16"], help="fp32: TF32 off; tf32: TF32 on for matmul and cuDNN; fp16: half weights and inputs")
    ap.add_argument("--gpu-mem-mib", type=int, default=0, help="GPU memory for weights, MiB (0: on CUDA the free memory at start minus --reserve-mib; on cpu unlimited)")
    ap.add_argument("--reserve-mib", type=int, default=4096, help="with --gpu-mem-mib 0: memory left for activations, workspace and the allocator's slack")
    ap.add_argument("--drop-late", action="store_true", help="do not execute a request whose SLO has passed when it is dequeued (outcome dropped)")
    ap.add_argument("--arch-map", default="", help="trace arch -> torchvision name, e.g. resnet50_v2=resnet50,xception=inception_v3")
    ap.add_argument("--seed", type=int, default=0, help="weight seed, as the zoo's (input: seed+1)")
    ap.add_argument("--no-io", dest="io", action="store_false", help="do not copy each request's input in and output out")
    ap.add_argument("--warmup", type=int, default=3, help="untimed runs per architecture before the replay (cuDNN autotuning)")
    ap.add_argument("--deadline-s", type=float, default=0, help="stop after this many seconds of replay; requests not run by then are not_run (0: run all)")
    ap.add_argument("--host-copies", default="per-instance", choices=["per-instance", "per-arch"],
                    help="per-instance: every instance has its own pinned host weights (as a clockwork worker); per-arch: "
                         "instances of an architecture share one (host memory for thousands of instances; each still has its own GPU copy and LOAD)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    a = ap.parse_args()

    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("baseline_server.py: --device cuda but torch.cuda.is_available() is false; use --device cpu to test without a GPU")
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    tf32 = a.precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = True
    dtype = torch.float16 if a.precision == "fp16" else torch.float32
    try:
        reqs = read_trace(a.trace)
        explicit = dict(kv.split("=", 1) for kv in a.arch_map.split(",") if kv)
    except (OSError, ValueError) as e:
        sys.exit(f"baseline_server.py: cannot read the trace: {e}")
    if not reqs:
        sys.exit(f"baseline_server.py: {a.trace} has no requests")
    os.makedirs(a.out, exist_ok=True)

    inst_arch = {}
    for r in reqs:
        if inst_arch.setdefault(r.instance, r.arch) != r.arch:
            sys.exit(f"baseline_server.py: instance {r.instance} has two architectures, {inst_arch[r.instance]} and {r.arch}")
    tv = {arch: torchvision_name(arch, explicit) for arch in sorted(set(inst_arch.values()))}
    missing = [k for k, v in tv.items() if v is None]
    if missing:
        sys.exit(f"baseline_server.py: no torchvision architecture for {', '.join(missing)}; map them with --arch-map NAME=torchvision_name")
    t_setup = time.perf_counter()
    archs = {arch: Arch(arch, tv[arch], a.seed, dtype, device) for arch in tv}
    host_bytes = sum(archs[ar].bytes for ar in inst_arch.values())
    print(f"{len(inst_arch)} instances of {len(archs)} architectures", file=sys.stderr, flush=True)
    hosts, registered, shared = {}, 0, {}
    if a.host_copies == "per-arch":
        host_bytes = sum(ar.bytes for ar in archs.values())
    print(f"host copies {a.host_copies}: {host_bytes / 2**30:.2f} GiB of host weights", file=sys.stderr, flush=True)
    for k, (inst, arch) in enumerate(inst_arch.items(), 1):
        if a.host_copies == "per-arch" and arch in shared:
            hosts[inst] = shared[arch]
            continue
        hosts[inst], reg = archs[arch].host_copy(device.type == "cuda")
        shared[arch] = hosts[inst]
        registered += reg
        if k % 500 == 0:
            print(f"  {k} host copies made", file=sys.stderr, flush=True)
    if a.gpu_mem_mib > 0:
        budget = a.gpu_mem_mib << 20
    elif device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        budget = max(0, free - (a.reserve_mib << 20))
    else:
        budget = 1 << 62
    srv = Server(archs, hosts, budget, device)

    check = {}
    # Warm-up: each architecture once (cuDNN autotuning, lazy CUDA init), then nothing resident.
    with torch.inference_mode():
        for arch in archs:
            inst = next(i for i, ar in inst_arch.items() if ar == arch)
            m, _ = srv.acquire(inst, arch)
            for _ in range(max(1, a.warmup)):
                y = srv.infer(m, arch, a.io)
            ref = archs[arch].reference
            err = (y.float().cpu() - ref).abs().max().item() / max(ref.abs().max().item(), 1e-30)
            check[arch] = {"max_rel_err": err, "top1_equal": bool((y.float().cpu().argmax(1) == ref.argmax(1)).all())}
            if err > TOLERANCE[a.precision]:
                print(f"warning: {arch}: output differs from the host fp32 reference by {err:.2e} of its scale (tolerance {TOLERANCE[a.precision]:.0e})",
                      file=sys.stderr)
            srv.evict_all()
            del m
    srv.loads.clear()
    srv.evictions = 0
    print(f"set up in {time.perf_counter() - t_setup:.1f}s ({registered} of {len(set(map(id, hosts.values())))} host copies registered with cudaHostRegister); "
          f"weights budget {'unlimited' if budget >= 1 << 62 else f'{budget >> 20} MiB'}; replaying {len(reqs)} requests", file=sys.stderr, flush=True)

    q = queue.SimpleQueue()
    t0 = time.perf_counter_ns()
    stop = threading.Event()

    def generate():
        for r in reqs:
            due = t0 + r.arrival
            while True:
                d = due - time.perf_counter_ns()
                if d <= 0 or stop.is_set():
                    break
                time.sleep(d / 1e9)
            if stop.is_set():
                break
            r.enq = time.perf_counter_ns() - t0
            q.put(r)
        q.put(None)

    gen = threading.Thread(target=generate, name="generator", daemon=True)
    gen.start()
    deadline = t0 + int(a.deadline_s * 1e9) if a.deadline_s > 0 else None
    with torch.inference_mode():
        while True:
            r = q.get()
            if r is None:
                break
            now = time.perf_counter_ns()
            if deadline is not None and now > deadline:
                stop.set()
                break
            r.start = now - t0
            if a.drop_late and r.start > r.arrival + r.slo:
                r.end, r.outcome = r.start, "dropped"
                continue
            try:
                m, r.load_ns = srv.acquire(r.instance, r.arch)
                r.cold = r.load_ns > 0
                te = time.perf_counter_ns()
                srv.infer(m, r.arch, a.io)
                r.end = time.perf_counter_ns() - t0
                r.exec_ns = r.end - (te - t0)
                r.outcome = "ok" if r.end - r.arrival <= r.slo else "late"
            except (RuntimeError, MemoryError) as e:
                r.end = time.perf_counter_ns() - t0
                r.outcome = "error"
                print(f"request {r.i} ({r.instance}): {str(e).splitlines()[0]}", file=sys.stderr)
    stop.set()
    gen.join(timeout=5)
    t_end = time.perf_counter_ns() - t0

    with open(os.path.join(a.out, "requests.tsv"), "w") as f:
        f.write(REQUESTS_HEADER)
        for r in reqs:
            lat = r.end - r.arrival if r.end >= 0 else -1
            f.write(f"{r.arrival}\t{r.start}\t{r.end}\t{lat}\t{r.slo}\t{r.instance}\t{r.arch}\t{r.outcome}\t"
                    f"{str(r.outcome == 'ok').lower()}\t{int(r.cold)}\t{r.load_ns}\t{r.exec_ns}\n")
    executed = [r for r in reqs if r.outcome in ("ok", "late")]
    counts = collections.Counter(r.outcome for r in reqs)
    dur_s = t_end / 1e9
    s = {
        "requests": len(reqs), "executed": len(executed), "within_slo": counts["ok"], "late": counts["late"],
        "dropped": counts["dropped"], "errors": counts["error"], "not_run": counts["not_run"],
        "duration_s": round(dur_s, 3),
        "offered_rps": round(len(reqs) / dur_s, 2), "throughput_rps": round(len(executed) / dur_s, 2),
        "goodput_rps": round(counts["ok"] / dur_s, 2), "slo_attainment": round(counts["ok"] / len(reqs), 6),
        "latency_ms": percentiles_ms([r.end - r.arrival for r in executed]),
        "cold_loads": len(srv.loads), "evictions": srv.evictions, "load_ms": percentiles_ms(srv.loads),
        "exec_ms": percentiles_ms([r.exec_ns for r in executed]),
        # How late the generator thread queued requests (the harness's own delay; it counts in latency).
        "enqueue_lag_ms": percentiles_ms([r.enq - r.arrival for r in reqs if r.enq >= 0]),
        "instances": len(inst_arch), "check": check, "archs": {k: v.tv_name for k, v in archs.items()},
        "budget_mib": budget >> 20 if budget < 1 << 62 else None, "host_weights_gib": round(host_bytes / 2**30, 3),
        "host_registered": registered, "host_copies": a.host_copies, "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "precision": a.precision, "drop_late": a.drop_late, "io": a.io, "torch": torch.__version__, "trace": a.trace,
    }
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(s, f, indent=1)
    lat, ld = s["latency_ms"], s["load_ms"]
    print(f"  requests         {s['requests']} ({s['executed']} executed, {s['dropped']} dropped, {s['errors']} errors, {s['not_run']} not run)")
    print(f"  duration         {dur_s:.1f} s")
    print(f"  goodput          {s['goodput_rps']:.1f} r/s (within SLO); throughput {s['throughput_rps']:.1f} r/s")
    print(f"  SLO attainment   {100 * s['slo_attainment']:.3f} %")
    if lat:
        print(f"  latency ms       p50 {lat['p50']:.2f}  p99 {lat['p99']:.2f}  p99.9 {lat['p99.9']:.2f}  max {lat['max']:.2f}")
    print(f"  cold loads       {s['cold_loads']} ({s['evictions']} evictions)" + (f"; load p50 {ld['p50']:.2f} ms, max {ld['max']:.2f} ms" if ld else ""))
    print(f"  reports in       {a.out} (requests.tsv, summary.json)")


if __name__ == "__main__":
    main()
