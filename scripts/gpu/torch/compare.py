#!/usr/bin/python3
"""Side-by-side tables of clockwork's exec times and PyTorch's (bench.py results): issue 10.

usage: compare.py results.json [more.json ...] [--profile cw-profile.json] [--precision tf32]
                  [--gap 0] [--gaps] [--out table.md]

Reads bench.py's JSON lines (several files are merged; a later row replaces an earlier one with
the same model, batch, precision, mode and gap) and, with --profile, the profile `cw tools profile`
writes (runtime/sim's format: models[].batches[].p50_ns/p99_ns/p9999_ns; model names must be the
torchvision names bench.py used). Prints Markdown:

  * exec time per model x batch at --gap (default 0: back to back): ours p50, PyTorch CUDA-graph
    p50, PyTorch eager p50 (ms), ours/graph and ours/eager, and p99.99/p50 of each; then the
    median of ours/graph and ours/eager over the rows that have both;
  * LOAD per model where bench.py ran with --load or the profile has load_ns: ours, PyTorch as
    one copy of all weight bytes and as one copy per tensor;
  * with --gaps, per model x batch x mode: p50 and p99.99/p50 at every gap, and power draw where
    bench.py sampled it.
Needs only the Python standard library.
"""
import argparse
import json
import statistics
import sys


def load_rows(paths, precision):
    rows = {}
    idle = []
    for p in paths:
        with open(p) as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    r = json.loads(line)
                except json.JSONDecodeError as e:
                    sys.exit(f"compare.py: {p}:{n}: not a JSON line: {e}")
                if r.get("model") == "_idle":
                    idle.append(r)
                    continue
                if r.get("error") or r.get("precision") != precision or "p50_us" not in r:
                    continue
                rows[(r["model"], r["batch"], r["mode"], float(r["gap_ms"]))] = r
    return rows, idle


def load_profile(path):
    with open(path) as f:
        prof = json.load(f)
    out, loads = {}, {}
    for m in prof.get("models", []):
        for b in m.get("batches", []):
            out[(m["name"], b["batch"])] = b
        if m.get("load_ns"):
            loads[m["name"]] = (m["load_ns"], m.get("weights_bytes"))
    return out, loads, prof.get("device", "?")


def fmt(v, spec=".3f"):
    return "–" if v is None else format(v, spec)


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results", nargs="+", help="bench.py JSON-lines files")
    ap.add_argument("--profile", help="clockwork profile JSON (cw tools profile) for the 'ours' columns")
    ap.add_argument("--precision", default="fp32", help="rows of this precision (fp32, tf32, fp16)")
    ap.add_argument("--gap", type=float, default=0, help="gap (ms) of the exec-time table; 0: back to back")
    ap.add_argument("--gaps", action="store_true", help="also print the idle-gap table")
    ap.add_argument("--out", help="write the Markdown here too")
    a = ap.parse_args()
    try:
        rows, idle = load_rows(a.results, a.precision)
        prof, ploads, dev = load_profile(a.profile) if a.profile else ({}, {}, None)
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"compare.py: cannot read the inputs: {e}")
    lines = []
    keys = sorted({(m, b) for (m, b, mode, g) in rows if g == a.gap and not mode.startswith("load-")} | set(prof))
    lines.append(f"Exec time, {a.precision}, gap {a.gap:g} ms (ms; PyTorch from {', '.join(a.results)}"
                 + (f"; ours from {a.profile}, {dev}" if a.profile else "") + ")")
    lines.append("")
    lines.append("| model | batch | ours p50 | graph p50 | eager p50 | ours/graph | ours/eager | ours p99.99/p50 | graph p99.99/p50 | eager p99.99/p50 |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    r_graph, r_eager = [], []
    for m, b in keys:
        g = rows.get((m, b, "graph", a.gap))
        e = rows.get((m, b, "eager", a.gap))
        o = prof.get((m, b))
        op50 = o["p50_ns"] / 1e6 if o else None
        gp50 = g["p50_us"] / 1e3 if g else None
        ep50 = e["p50_us"] / 1e3 if e else None
        rg, re_ = ratio(op50, gp50), ratio(op50, ep50)
        if rg is not None:
            r_graph.append(rg)
        if re_ is not None:
            r_eager.append(re_)
        otail = ratio(o["p9999_ns"], o["p50_ns"]) if o else None
        lines.append(f"| {m} | {b} | {fmt(op50)} | {fmt(gp50)} | {fmt(ep50)} | {fmt(rg)} | {fmt(re_)} | "
                     f"{fmt(otail, '.4f')} | {fmt(g and g['p9999_over_p50'], '.4f')} | {fmt(e and e['p9999_over_p50'], '.4f')} |")
    lines.append("")
    if r_graph or r_eager:
        lines.append(f"Median ours/graph over {len(r_graph)} rows: {fmt(statistics.median(r_graph) if r_graph else None)}; "
                     f"median ours/eager over {len(r_eager)} rows: {fmt(statistics.median(r_eager) if r_eager else None)}.")
        lines.append("")
    load_models = sorted({m for (m, _, mode, _) in rows if mode.startswith("load-")} | (set(ploads) & {m for (m, _, _, _) in rows}))
    if load_models:
        lines.append("LOAD of the weights from pinned host memory (ms, p50; PyTorch: bench.py --load)")
        lines.append("")
        lines.append("| model | MiB | ours | PyTorch one copy | PyTorch per tensor | ours/one copy |")
        lines.append("|---|---|---|---|---|---|")
        for m in load_models:
            fl, te = rows.get((m, 0, "load-flat", 0.0)), rows.get((m, 0, "load-tensors", 0.0))
            o = ploads.get(m)
            ours = o[0] / 1e6 if o else None
            nb = (fl or te or {}).get("bytes") or (o[1] if o else None)
            flp = fl["p50_us"] / 1e3 if fl else None
            tep = te["p50_us"] / 1e3 if te else None
            lines.append(f"| {m} | {fmt(nb and nb / 2**20, '.1f')} | {fmt(ours)} | {fmt(flp)} | {fmt(tep)} | {fmt(ratio(ours, flp))} |")
        lines.append("")
    if a.gaps:
        gaps = sorted({g for (_, _, _, g) in rows})
        lines.append(f"PyTorch after idle gaps, {a.precision}: p50 ms / p99.99 over p50 [mean W] per gap (ms)")
        lines.append("")
        lines.append("| model | batch | mode | " + " | ".join(f"gap {g:g}" for g in gaps) + " |")
        lines.append("|---|---|---|" + "---|" * len(gaps))
        for m, b, mode in sorted({(m, b, mode) for (m, b, mode, _) in rows if not mode.startswith("load-")}):
            cells = []
            for g in gaps:
                r = rows.get((m, b, mode, g))
                if r is None:
                    cells.append("–")
                    continue
                c = f"{r['p50_us'] / 1e3:.3f} / {r['p9999_over_p50']:.3f}"
                if r.get("power_w") is not None:
                    c += f" [{r['power_w']:.0f} W]"
                cells.append(c)
            lines.append(f"| {m} | {b} | {mode} | " + " | ".join(cells) + " |")
        for r in idle:
            lines.append("")
            lines.append(f"Idle GPU ({r.get('device', '?')}): {r.get('power_w')} W mean, {r.get('power_max_w')} W max, SM {r.get('sm_mhz')} MHz.")
        lines.append("")
    text = "\n".join(lines)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
