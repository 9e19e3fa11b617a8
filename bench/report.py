#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Report of one bench/run.sh run: results.json, report.md and PNG plots.

    bench/report.py RESULTS_DIR

Reads RESULTS_DIR/run.txt, raw/*.json (one zap-bench run each, named by its
label), raw/base-memif-*.txt and csv/*.csv (histograms); writes
results.json (every figure, the run's configuration, the machine),
report.md (ratios first) and plots/*.png (gnuplot, when installed).

Labels: s-NAME scenario NAME on the fsync cluster (s-NAME-rRATE: one rate of
a sweep); sm-NAME-rRATE the sweep on the memory cluster; cmp-SYS-DUR-cN
commits (zap) / puts (etcd) with N clients, DUR fsync | memory | nofsync;
cmpr-SYS-DUR-cN the same for reads; base-fsync the disk floor; base-seqwrite
the disk's sequential write + fdatasync rate (100 MiB in 1 MiB writes), the
floor of the large transactions and blobs (runs with --iterations); zref-NAME
ZEO scenario NAME run again against the ZEO_REF server (run.txt zeo_ref),
reported beside s-NAME with zap/reference ratios.
"""
import glob
import json
import os
import platform
import re
import shutil
import subprocess
import sys

out = sys.argv[1]
raw = os.path.join(out, "raw")
csvd = os.path.join(out, "csv")
plots = os.path.join(out, "plots")
os.makedirs(plots, exist_ok=True)
here = os.path.dirname(os.path.abspath(__file__))


def read_kv(path):
    d = {}
    if os.path.exists(path):
        for line in open(path):
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                d[k] = v
    return d


def machine():
    m = {"uname": " ".join(platform.uname())}
    try:
        cpu = open("/proc/cpuinfo").read()
        names = re.findall(r"^model name\s*:\s*(.*)$", cpu, re.M)
        m["cpu_model"] = names[0] if names else ""
        m["cpus"] = len(re.findall(r"^processor\s*:", cpu, re.M))
        flags = re.findall(r"^flags\s*:\s*(.*)$", cpu, re.M)
        m["hypervisor"] = bool(flags and "hypervisor" in flags[0].split())
    except OSError:
        pass
    try:
        mem = open("/proc/meminfo").read()
        kb = int(re.search(r"MemTotal:\s*(\d+)", mem).group(1))
        m["memory_gib"] = round(kb / 1048576, 1)
    except (OSError, AttributeError):
        pass
    m["loadavg_at_report"] = os.getloadavg()
    return m


def scenario_descriptions():
    d = {}
    for f in glob.glob(os.path.join(here, "scenarios", "*.yaml")):
        name = os.path.basename(f)[:-5]
        for line in open(f):
            mt = re.match(r"description:\s*(.*)", line)
            if mt:
                d[name] = mt.group(1).strip()
    return d


run = read_kv(os.path.join(out, "run.txt"))
runs = {}
for f in sorted(glob.glob(os.path.join(raw, "*.json"))):
    try:
        r = json.load(open(f))
    except ValueError:
        continue
    runs[r["label"] or os.path.basename(f)[:-5]] = r

memif = {}
for f in glob.glob(os.path.join(raw, "base-memif-*.txt")):
    pol = os.path.basename(f)[len("base-memif-"):-4]
    mt = re.search(r"n (\d+) p50 ([\d.]+) us p99 ([\d.]+) us max ([\d.]+) us", open(f).read())
    if mt:
        memif[pol] = {"n": int(mt.group(1)), "p50_us": float(mt.group(2)),
                      "p99_us": float(mt.group(3)), "max_us": float(mt.group(4))}

descs = scenario_descriptions()


def us(ns):
    return ns / 1000.0


def fmt_us(ns):
    v = ns / 1000.0
    if v >= 1000:
        return "%.2f ms" % (v / 1000.0)
    if v >= 10:
        return "%.0f µs" % v
    return "%.2f µs" % v


def ratio(a, b):
    return a / b if b else float("nan")


def lat(r, q):
    return r["latency_ns"][q]


# ---------------------------------------------------------------- ratios
ratios = {}
commit = runs.get("s-04-commit-1x100")
for pol in ("adaptive", "busy"):
    if commit and pol in memif:
        m = memif[pol]
        ratios["commit_vs_memif_" + pol] = {
            "p50_x": ratio(us(lat(commit, "p50")), m["p50_us"]),
            "p99_x": ratio(us(lat(commit, "p99")), m["p99_us"])}
memc = runs.get("cmp-zap-memory-c1")
for pol in ("adaptive", "busy"):
    if memc and pol in memif:
        ratios["memory_commit_vs_memif_" + pol] = {
            "p50_x": ratio(us(lat(memc, "p50")), memif[pol]["p50_us"]),
            "p99_x": ratio(us(lat(memc, "p99")), memif[pol]["p99_us"])}
floor = runs.get("base-fsync")
if commit and floor:
    ratios["commit_vs_disk_floor"] = {
        "p50_x": ratio(lat(commit, "p50"), lat(floor, "p50")),
        "p99_x": ratio(lat(commit, "p99"), lat(floor, "p99"))}

pairs = [("fsync", "fsync"), ("memory", "nofsync")]
cmp_rows = []
for kind, pre in (("commit", "cmp"), ("read", "cmpr")):
    for zd, ed in pairs:
        cs = sorted({int(m.group(1)) for k in runs
                     for m in [re.match(r"%s-zap-%s-c(\d+)$" % (pre, zd), k)] if m})
        for c in cs:
            z = runs.get("%s-zap-%s-c%d" % (pre, zd, c))
            e = runs.get("%s-etcd-%s-c%d" % (pre, ed, c))
            if not z or not e:
                continue
            cmp_rows.append({
                "kind": kind, "zap_durability": zd, "etcd_durability": ed, "clients": c,
                "zap": {"p50_ns": lat(z, "p50"), "p99_ns": lat(z, "p99"),
                        "ops_s": z["throughput_ops_s"], "loadgen_cpu_pct": z["loadgen_cpu"]["cpu_pct"]},
                "etcd": {"p50_ns": lat(e, "p50"), "p99_ns": lat(e, "p99"),
                         "ops_s": e["throughput_ops_s"], "loadgen_cpu_pct": e["loadgen_cpu"]["cpu_pct"]},
                "p50_ratio": ratio(lat(z, "p50"), lat(e, "p50")),
                "p99_ratio": ratio(lat(z, "p99"), lat(e, "p99")),
                "throughput_ratio": ratio(z["throughput_ops_s"], e["throughput_ops_s"])})
ratios["zap_vs_etcd"] = cmp_rows

# The client transports side by side, one client to the leader: loads over
# the memif client port (DPDK), over kernel UDP, and in-process (shared memory).
transport_rows = []
for what, keys in (("load", (("native-memif", "s-15-load-memif"), ("native UDP", "s-14-load-udp-1c"),
                            ("in-process (shm)", "s-03-load-shm"))),
                   ("commit", (("native-memif", "s-16-commit-memif"),
                               ("native UDP", "s-04-commit-1x100")))):
    for name, k in keys:
        r = runs.get(k)
        if r:
            transport_rows.append({"op": what, "transport": name, "run": k,
                                   "p50_ns": lat(r, "p50"), "p99_ns": lat(r, "p99"),
                                   "ops_s": r["throughput_ops_s"],
                                   "loadgen_cpu_us_per_op": r["loadgen_cpu"]["cpu_us_per_op"]})
ratios["client_transports"] = transport_rows


def idle_of(r):
    """The --idle-conns figures of a run, or None when it had none."""
    i = r.get("idle_conns") if r else None
    return i if i and i.get("requested") else None


# zap's ZEO gateway against the reference ZEO server (ZEO_REF): every ZEO
# scenario that ran on both, same client and parameters.
zeo_ref_rows = []
for k in sorted(k for k in runs if k.startswith("zref-")):
    name = k[len("zref-"):]
    ref, z = runs[k], runs.get("s-" + name)
    if not z:
        continue
    row = {"scenario": name, "op": ref["op"], "clients": ref["clients"],
           "reference": {"p50_ns": lat(ref, "p50"), "p99_ns": lat(ref, "p99"),
                         "ops_s": ref["throughput_ops_s"], "errors": ref["errors"]},
           "zap": {"p50_ns": lat(z, "p50"), "p99_ns": lat(z, "p99"),
                   "ops_s": z["throughput_ops_s"], "errors": z["errors"]},
           "p50_ratio": ratio(lat(z, "p50"), lat(ref, "p50")),
           "p99_ratio": ratio(lat(z, "p99"), lat(ref, "p99")),
           "throughput_ratio": ratio(z["throughput_ops_s"], ref["throughput_ops_s"])}
    if idle_of(ref) or idle_of(z):
        row["reference"]["idle_conns"] = ref.get("idle_conns")
        row["zap"]["idle_conns"] = z.get("idle_conns")
    zeo_ref_rows.append(row)
ratios["zeo_vs_reference"] = {"reference": run.get("zeo_ref", ""), "rows": zeo_ref_rows}

# Large transactions and blobs: the scenarios run a fixed number of times
# (--iterations) that move bytes; MB/s (10^6 B/s) of one operation (its
# bytes over its mean time) beside the disk's sequential write + fdatasync
# rate (base-seqwrite) and the ZEO_REF server's. A blob operation is two
# rows: its commit (storeBlob*) and its read back (sendBlob).
seqw = runs.get("base-seqwrite")


def mean_s(r, part):
    h = r.get(part) or {}
    return h.get("mean", 0) / 1e9 if h.get("count") else 0.0


def large_parts(r):
    """(figure, latency key, bytes) of each part of a large run."""
    b = r.get("bytes_per_op", 0)
    if r["op"] == "blob":
        return [("commit (storeBlob*)", "write_latency_ns", b, True),
                ("read back (sendBlob)", "read_latency_ns", b, False)]
    return [("commit", "latency_ns", b, True)]


large_rows = []
for k in sorted(k for k in runs if k.startswith("s-")):
    z = runs[k]
    if not z.get("config", {}).get("iterations") or not z.get("bytes_per_op"):
        continue
    name = k[2:]
    ref = runs.get("zref-" + name)
    for part, key, b, is_write in large_parts(z):
        zs = mean_s(z, key)
        rs = mean_s(ref, key) if ref else 0.0
        row = {"scenario": name, "part": part, "bytes": b,
               "zap": {"s_per_op": zs, "mb_s": b / zs / 1e6 if zs else 0.0,
                       "ops": (z.get(key) or {}).get("count", 0), "errors": z["errors"],
                       "mismatches": z.get("mismatches", 0)},
               "disk_floor_mb_s": seqw.get("mb_s") if (seqw and is_write) else None}
        if ref:
            row["reference"] = {"s_per_op": rs, "mb_s": b / rs / 1e6 if rs else 0.0,
                                "ops": (ref.get(key) or {}).get("count", 0),
                                "errors": ref["errors"], "mismatches": ref.get("mismatches", 0)}
            row["time_ratio"] = ratio(zs, rs)
        large_rows.append(row)
ratios["large"] = {"disk_floor": {"mb_s": seqw.get("mb_s"), "s_per_op": mean_s(seqw, "latency_ns"),
                                  "bytes": seqw.get("bytes_per_op")} if seqw else None,
                   "rows": large_rows}

results = {"run": run, "machine": machine(),
           "baselines": {"memif": memif, "disk_floor": floor, "disk_seqwrite": seqw},
           "ratios": ratios, "runs": runs}
with open(os.path.join(out, "results.json"), "w") as f:
    json.dump(results, f, indent=1, sort_keys=True)

# ---------------------------------------------------------------- plots
gp = shutil.which("gnuplot")
png = []


def gnuplot(script, name):
    if not gp:
        return
    path = os.path.join(plots, name)
    full = 'set terminal pngcairo size 900,560 noenhanced font ",10"\nset output "%s"\n%s' % (path, script)
    r = subprocess.run([gp], input=full.encode(), capture_output=True)
    if r.returncode == 0 and os.path.exists(path):
        png.append(name)
    else:
        sys.stderr.write("report.py: gnuplot %s: %s\n" % (name, r.stderr.decode()[-300:]))


def cdf(labels, name, title):
    files = [(l, os.path.join(csvd, l + ".csv")) for l in labels]
    files = [(l, p) for l, p in files if os.path.exists(p) and os.path.getsize(p) > 30]
    if not files:
        return
    s = ("set title '%s'\nset datafile separator ','\nset logscale x\nset key bottom right\n"
         "set xlabel 'latency (µs)'\nset ylabel 'fraction of operations'\nset grid\n"
         "set yrange [0:1]\nplot " % title)
    s += ", ".join("'%s' every ::1 using ($1/1000):3 with steps lw 2 title '%s'" % (p, l)
                   for l, p in files)
    gnuplot(s + "\n", name)


scen = sorted(k for k in runs if k.startswith("s-") and not re.search(r"-r\d+$", k))
for k in scen:
    cdf([k], "cdf-%s.png" % k, "latency CDF: %s" % k)
cdf(scen + ["base-fsync"], "cdf-all.png", "latency CDF: every scenario and the disk floor")
for r in zeo_ref_rows:
    cdf(["s-" + r["scenario"], "zref-" + r["scenario"]], "cdf-zref-%s.png" % r["scenario"],
        "latency CDF: %s, zap (s-) and the reference ZEO server (zref-)" % r["scenario"])


def series(prefix_re):
    pts = []
    for k, r in runs.items():
        m = re.match(prefix_re, k)
        if m:
            pts.append((r["throughput_ops_s"], us(lat(r, "p50")), us(lat(r, "p99")), int(m.group(1))))
    return sorted(pts, key=lambda p: p[3])


lt = [("zap fsync, closed loop 1..64 clients", r"cmp-zap-fsync-c(\d+)$"),
      ("etcd fsync, closed loop", r"cmp-etcd-fsync-c(\d+)$"),
      ("zap memory, closed loop", r"cmp-zap-memory-c(\d+)$"),
      ("etcd tmpfs (no fsync), closed loop", r"cmp-etcd-nofsync-c(\d+)$"),
      ("zap fsync, open loop rate sweep", r"s-11-sweep-commit-r(\d+)$"),
      ("zap memory, open loop rate sweep", r"sm-11-sweep-commit-r(\d+)$")]
dat = os.path.join(plots, "latency-throughput.dat")
with open(dat, "w") as f:
    f.write("# series: throughput_ops_s p50_us p99_us clients_or_rate\n")
    idx = []
    for title, rx in lt:
        pts = series(rx)
        if not pts:
            continue
        idx.append(title)
        f.write("# %s\n" % title)
        for p in pts:
            f.write("%.1f %.1f %.1f %d\n" % p)
        f.write("\n\n")
for col, q in ((2, "p50"), (3, "p99")):
    if not idx:
        break
    s = ("set title 'commit latency (%s) vs throughput: zap beside etcd, 3 nodes on loopback'\n"
         "set logscale xy\nset xlabel 'throughput (commits/s)'\nset ylabel '%s latency (µs)'\n"
         "set grid\nset key outside bottom center horizontal maxrows 3\nplot " % (q, q))
    s += ", ".join("'%s' index %d using 1:%d with linespoints lw 2 title '%s'" % (dat, i, col, t)
                   for i, t in enumerate(idx))
    gnuplot(s + "\n", "latency-throughput-%s.png" % q)

# ---------------------------------------------------------------- report.md
L = []
m = results["machine"]
L.append("# zap benchmark report")
L.append("")
L.append("Command: `%s` (bench/run.sh), %s objects loaded, git %s, %s .. %s (%s s)." % (
    run.get("command", "?"), run.get("objects", "?"), run.get("git", "?"), run.get("started", "?"),
    run.get("finished", "?"), run.get("seconds", "?")))
L.append("Machine: %s, %s CPUs%s, %s GiB; %s; load average at the end %s." % (
    m.get("cpu_model", "?"), m.get("cpus", "?"), " (VM)" if m.get("hypervisor") else "",
    m.get("memory_gib", "?"), m["uname"], " ".join("%.1f" % x for x in m["loadavg_at_report"])))
L.append("Cluster: 3 zapd on this box (local-3node.yaml: net_memif between nodes, adaptive "
         "polling); clients over kernel UDP (native) or TCP (ZEO), to the leader. %s." % run.get("etcd", "etcd"))
L.append("")
L.append("## Ratios")
L.append("")
for pol, why in (("adaptive", "the cluster's polling policy"), ("busy", "busy polling")):
    cm = ratios.get("commit_vs_memif_" + pol)
    if cm:
        L.append("- zap one-shot commit (1 × 100 B, 1 client, fsync): p50 %s = **%.0f×** the memif round trip "
                 "with %s (%.2f µs), p99 %s = **%.0f×** (%.2f µs)." % (
                     fmt_us(lat(commit, "p50")), cm["p50_x"], why, memif[pol]["p50_us"],
                     fmt_us(lat(commit, "p99")), cm["p99_x"], memif[pol]["p99_us"]))
for pol, why in (("adaptive", "the cluster's polling policy"), ("busy", "busy polling")):
    cm = ratios.get("memory_commit_vs_memif_" + pol)
    if cm:
        L.append("- the same commit with `log.durability: memory` (no disk in the path): p50 %s = **%.0f×** "
                 "the memif round trip with %s, p99 %s = **%.0f×**." % (
                     fmt_us(lat(memc, "p50")), cm["p50_x"], why, fmt_us(lat(memc, "p99")), cm["p99_x"]))
if "commit_vs_disk_floor" in ratios:
    cf = ratios["commit_vs_disk_floor"]
    L.append("- the same commit against the disk floor (one 100 B append + fdatasync on the logs' "
             "filesystem: p50 %s, p99 %s): p50 **%.2f×**, p99 **%.2f×**." % (
                 fmt_us(lat(floor, "p50")), fmt_us(lat(floor, "p99")), cf["p50_x"], cf["p99_x"]))
if cmp_rows:
    L.append("- zap / etcd, same value size (100 B), closed loop, one request in flight per client; "
             "latency ratio < 1 and throughput ratio > 1 favour zap; load generator CPU "
             "(user + system, % of one CPU) beside every throughput:")
    L.append("")
    L.append("| op | durability (zap / etcd) | clients | zap p50 | etcd p50 | p50 ratio | zap p99 | etcd p99 "
             "| p99 ratio | zap ops/s (cpu) | etcd ops/s (cpu) | throughput ratio |")
    L.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in cmp_rows:
        L.append("| %s | %s / %s | %d | %s | %s | %.2f | %s | %s | %.2f | %.0f (%.0f %%) | %.0f (%.0f %%) | %.2f |" % (
            "commit / put" if r["kind"] == "commit" else "load / range",
            r["zap_durability"], r["etcd_durability"], r["clients"],
            fmt_us(r["zap"]["p50_ns"]), fmt_us(r["etcd"]["p50_ns"]), r["p50_ratio"],
            fmt_us(r["zap"]["p99_ns"]), fmt_us(r["etcd"]["p99_ns"]), r["p99_ratio"],
            r["zap"]["ops_s"], r["zap"]["loadgen_cpu_pct"], r["etcd"]["ops_s"],
            r["etcd"]["loadgen_cpu_pct"], r["throughput_ratio"]))


def idle_cell(i):
    if not i or not i.get("requested"):
        return "—"
    t = "%d of %d" % (i["held"], i["requested"])
    if i.get("lost"):
        t += ", %d closed during the run" % i["lost"]
    return t


if zeo_ref_rows:
    L.append("")
    L.append("## zap's ZEO gateway against the reference ZEO server (%s)" % run.get("zeo_ref", "?"))
    L.append("")
    L.append("The same C ZEO 5 client and parameters against the reference server given as "
             "`ZEO_REF` (run with the zap cluster stopped) and against zap's ZEO gateway on the "
             "leader (fsync cluster); the reference holds the same objects, loaded through ZEO. "
             "zap/reference below 1 favours zap for latency, above 1 for throughput.")
    L.append("")
    L.append("| figure | reference | zap | zap/reference |")
    L.append("| --- | ---: | ---: | ---: |")
    for r in zeo_ref_rows:
        n = "%s (%d conn)" % (r["scenario"], r["clients"])
        rf, z = r["reference"], r["zap"]
        L.append("| %s p50 | %s | %s | %.2f |" % (n, fmt_us(rf["p50_ns"]), fmt_us(z["p50_ns"]), r["p50_ratio"]))
        L.append("| %s p99 | %s | %s | %.2f |" % (n, fmt_us(rf["p99_ns"]), fmt_us(z["p99_ns"]), r["p99_ratio"]))
        L.append("| %s throughput (ops/s) | %.0f | %.0f | %.2f |" % (n, rf["ops_s"], z["ops_s"],
                                                                   r["throughput_ratio"]))
        if "idle_conns" in rf:
            ri, zi = rf.get("idle_conns") or {}, z.get("idle_conns") or {}
            L.append("| %s idle connections held | %s | %s | %s |" % (
                n, idle_cell(ri), idle_cell(zi),
                "%.2f" % ratio(zi.get("held_at_end", 0), ri.get("held_at_end", 0))
                if ri.get("held_at_end") else "—"))
    errs = ["%s: reference %d, zap %d" % (r["scenario"], r["reference"]["errors"], r["zap"]["errors"])
            for r in zeo_ref_rows if r["reference"]["errors"] or r["zap"]["errors"]]
    if errs:
        L.append("")
        L.append("Errors (operations that failed, not in the percentiles): " + "; ".join(errs) + ".")
    idle_rows = [r for r in zeo_ref_rows if "idle_conns" in r["reference"]]
    for r in idle_rows:
        zi = r["zap"].get("idle_conns") or {}
        if zi.get("requested") and zi.get("held", 0) < zi["requested"]:
            L.append("")
            L.append("%s: zap's gateway held %d of the %d idle connections asked for; its "
                     "committers' figures are beside %d idle connections, not %d." % (
                         r["scenario"], zi["held"], zi["requested"], zi.get("held_at_end", 0),
                         zi["requested"]))


def mb_cell(side):
    if not side or not side.get("ops"):
        return "—"
    return "%.1f (%.2f s)" % (side["mb_s"], side["s_per_op"])


if large_rows:
    L.append("")
    L.append("## Large transactions and blobs")
    L.append("")
    fl = ratios["large"]["disk_floor"]
    L.append("One connection, one operation after the other, each scenario a fixed number of times; "
             "MB/s = 10^6 bytes per second of one operation (its bytes over its mean time), the mean "
             "seconds per operation in brackets. Disk floor: %s on the logs' filesystem "
             "(base-seqwrite). Reference: the same client and parameters against `ZEO_REF` (%s). "
             "zap/reference time ratio above 1: zap is slower." % (
                 "%.1f MB written in 1 MiB writes, then one fdatasync, %.3f s each (%d times)" % (
                     fl["bytes"] / 1e6, fl["s_per_op"], seqw["ops"]) if fl else "not measured",
                 run.get("zeo_ref") or "none given"))
    L.append("")
    L.append("| figure | disk floor MB/s | zap MB/s (s/op) | reference MB/s (s/op) | zap/reference time ratio |")
    L.append("| --- | ---: | ---: | ---: | ---: |")
    for r in large_rows:
        L.append("| %s: %s, %.1f MB, %d× | %s | %s | %s | %s |" % (
            r["scenario"], r["part"], r["bytes"] / 1e6, r["zap"]["ops"],
            "%.0f" % r["disk_floor_mb_s"] if r["disk_floor_mb_s"] else "—",
            mb_cell(r["zap"]), mb_cell(r.get("reference")),
            "%.2f" % r["time_ratio"] if "time_ratio" in r and r["reference"]["ops"] and r["zap"]["ops"]
            else "—"))
    bad = []
    for r in large_rows:
        for side in ("zap", "reference"):
            v = r.get(side)
            if v and (v["errors"] or v["mismatches"]) and r["part"] != "read back (sendBlob)":
                bad.append("%s on %s: %d errors, %d blobs read back with other bytes" % (
                    r["scenario"], side, v["errors"], v["mismatches"]))
    L.append("")
    L.append("Errors: " + ("; ".join(bad) if bad else "none; every blob read back byte-identical") + ".")
    for r in large_rows:
        if r["part"].startswith("commit (storeBlob") and "time_ratio" in r and r["reference"]["ops"]:
            L.append("")
            L.append("Target (a 100 MB blob commit within 2× of the stock server's time): %s, "
                     "zap/reference %.2f: %s." % (
                         r["scenario"], r["time_ratio"], "met" if r["time_ratio"] <= 2 else "not met"))
if transport_rows:
    L.append("")
    L.append("## Client transports (1 client, to the leader, fsync cluster)")
    L.append("")
    L.append("native-memif: zap-bench's own DPDK memif port to the leader's client port; native UDP: "
             "libzapclient on a kernel socket over loopback; in-process: the shared-memory read API.")
    L.append("")
    L.append("| op | transport | p50 | p99 | ops/s | loadgen cpu µs/op |")
    L.append("| --- | --- | ---: | ---: | ---: | ---: |")
    for r in transport_rows:
        L.append("| %s | %s | %s | %s | %.0f | %.1f |" % (
            r["op"], r["transport"], fmt_us(r["p50_ns"]), fmt_us(r["p99_ns"]), r["ops_s"],
            r["loadgen_cpu_us_per_op"]))
L.append("")
L.append("## Scenarios (fsync cluster)")
L.append("")
L.append("| scenario | what | clients | ops/s | p50 | p90 | p99 | p99.9 | max | errors | conflicts | loadgen cpu |")
L.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
base_what = {"base-fsync": "disk floor: 100 B append + fdatasync",
             "base-seqwrite": "disk floor: 100 MiB in 1 MiB writes + fdatasync"}
for k in scen + ["base-fsync", "base-seqwrite"]:
    r = runs.get(k)
    if not r:
        continue
    name = k[2:] if k.startswith("s-") else k
    what = descs.get(name, base_what.get(k, ""))
    L.append("| %s | %s | %d | %.0f | %s | %s | %s | %s | %s | %d | %s | %.0f %% (%.1f µs/op) |" % (
        name, what, r["clients"], r["throughput_ops_s"], fmt_us(lat(r, "p50")), fmt_us(lat(r, "p90")),
        fmt_us(lat(r, "p99")), fmt_us(lat(r, "p999")), fmt_us(lat(r, "max")), r["errors"],
        "%.1f %%" % (100 * r["conflict_rate"]) if r["op"] == "conflict" else "",
        r["loadgen_cpu"]["cpu_pct"], r["loadgen_cpu"]["cpu_us_per_op"]))
mix = runs.get("s-07-mix")
if mix:
    L.append("")
    L.append("Mix: loads p50 %s / p99 %s, commits p50 %s / p99 %s." % (
        fmt_us(mix["read_latency_ns"]["p50"]), fmt_us(mix["read_latency_ns"]["p99"]),
        fmt_us(mix["write_latency_ns"]["p50"]), fmt_us(mix["write_latency_ns"]["p99"])))
for k in scen:
    i = idle_of(runs.get(k))
    if not i:
        continue
    r = runs[k]
    L.append("")
    L.append("Idle connections (%s): %d committers beside %d idle ZEO connections asked for: the "
             "server held %d (%d tried, %d refused%s; %d closed during the run); the committers' "
             "p50 %s, p99 %s, %.0f ops/s." % (
                 k[2:], r["clients"], i["requested"], i["held"], i["tried"], i["refused"],
                 ", opening stopped after refusals in a row" if i["tried"] < i["requested"] else "",
                 i.get("lost", 0), fmt_us(lat(r, "p50")), fmt_us(lat(r, "p99")),
                 r["throughput_ops_s"]))
L.append("")
L.append("## Open-loop rate sweeps (one-shot commit 1 × 100 B; latency from the intended send time)")
L.append("")
L.append("Achieved: operations completed inside the measured window per second. Unsent: arrivals of the "
         "window still queued one window length after it ended (the server is saturated; their latency "
         "is not in the percentiles, which are therefore a lower bound).")
L.append("")
L.append("| cluster | target rate | achieved ops/s | p50 | p99 | p99.9 | max | unsent | errors | loadgen cpu |")
L.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for pre, name in (("s-11-sweep-commit-r", "fsync"), ("sm-11-sweep-commit-r", "memory")):
    for k in sorted((k for k in runs if k.startswith(pre)), key=lambda k: int(k[len(pre):])):
        r = runs[k]
        L.append("| %s | %.0f | %.0f | %s | %s | %s | %s | %d | %d | %.0f %% |" % (
            name, r["rate_target"], r["throughput_ops_s"], fmt_us(lat(r, "p50")), fmt_us(lat(r, "p99")),
            fmt_us(lat(r, "p999")), fmt_us(lat(r, "max")), r.get("unsent", 0), r["errors"],
            r["loadgen_cpu"]["cpu_pct"]))
L.append("")
L.append("## Baselines")
L.append("")
for pol, b in sorted(memif.items()):
    L.append("- memif ping-pong (%s polling, 64 B, %d round trips): p50 %.2f µs, p99 %.2f µs, max %.0f µs." % (
        pol, b["n"], b["p50_us"], b["p99_us"], b["max_us"]))
if floor:
    L.append("- disk floor: p50 %s, p99 %s, max %s (%d appends)." % (
        fmt_us(lat(floor, "p50")), fmt_us(lat(floor, "p99")), fmt_us(lat(floor, "max")), floor["ops"]))
if seqw:
    L.append("- disk sequential write: %.1f MB in 1 MiB writes + one fdatasync: %.1f MB/s, %.3f s "
             "mean (min %.3f, max %.3f; %d times)." % (
                 seqw["bytes_per_op"] / 1e6, seqw["mb_s"], mean_s(seqw, "latency_ns"),
                 seqw["latency_ns"]["min"] / 1e9, seqw["latency_ns"]["max"] / 1e9, seqw["ops"]))
L.append("")
# zapd's per-stage breakdown of its own writes, from each node's final report
# (dataplane/node/node_stages.c; docs/operations.md "Where the time goes").
stage_lines = []
zeo_lines = []
for name in sorted(os.listdir(os.path.join(out, "logs"))) if os.path.isdir(os.path.join(out, "logs")) else []:
    if not name.endswith(".log"):
        continue
    with open(os.path.join(out, "logs", name), errors="replace") as lf:
        for line in lf:
            if line.startswith("  latency (us, p50/p99/count):"):
                body = line.split(":", 1)[1].strip()
                if "submit->paxos 0.0/0.0/0 " not in body:
                    stage_lines.append("- %s: %s" % (name[:-4], body))
            elif line.startswith("  zeo latency (us, p50/p99/count):"):
                body = line.split(":", 1)[1].strip()
                if "vote 0.0/0.0/0 " not in body:
                    zeo_lines.append("- %s: %s" % (name[:-4], body))
if stage_lines:
    L.append("## Where the time goes (zapd, per stage, its own commits; µs p50/p99/count)")
    L.append("")
    L.append("submit->paxos: client thread to the paxos stage (rings, polling wake-up); "
             "submit->chosen: to the slot reaching the apply stage (includes submit->paxos, "
             "the consensus round trips and the log's fdatasync); chosen->applied: the state "
             "machine and store; fsync: one group commit; applied->replied: the apply stage's "
             "answer to the reply leaving the client service (result ring, polling wake-up, send).")
    L.append("")
    L.extend(stage_lines)
    L.append("")
if zeo_lines:
    L.append("## Where a ZEO commit's time goes (zapd's gateway; µs p50/p99/count)")
    L.append("")
    L.append("vote: the vote call to its reply; prepare: the PREPARE round (request into the "
             "node's client service to its answer back on the gateway's I/O thread); finish: "
             "tpc_finish to its reply; commit: the COMMIT round; applied: after COMMIT's answer "
             "until the local store has the transaction.")
    L.append("")
    L.extend(zeo_lines)
    L.append("")
if png:
    L.append("## Plots")
    L.append("")
    for p in png:
        if not p.startswith("cdf-s-") and not p.startswith("cdf-zref-"):
            L.append("![%s](plots/%s)" % (p, p))
    L.append("")
    L.append("Per-scenario CDFs: " + ", ".join("[%s](plots/%s)" % (p[4:-4], p)
                                              for p in png if p.startswith("cdf-s-")) + ".")
    zp = [p for p in png if p.startswith("cdf-zref-")]
    if zp:
        L.append("")
        L.append("zap beside the reference ZEO server: " + ", ".join(
            "[%s](plots/%s)" % (p[len("cdf-zref-"):-4], p) for p in zp) + ".")
L.append("")
L.append("Files: results.json (every figure), csv/LABEL.csv (histograms: value_ns, count, cumulative), "
         "raw/ (one zap-bench JSON per run), logs/.")
with open(os.path.join(out, "report.md"), "w") as f:
    f.write("\n".join(L) + "\n")
print("report.py: %s/report.md, %d runs, %d plots" % (out, len(runs), len(png)))
