#!/usr/bin/env python3
"""Figures of a bench/idle-heap.sh run (docs/benchmarks.md, issue 19).

  bench/idle-summary.py OUTDIR tcp|websocket "5000 10000 17900"

Per size: RSS before logins and held (the bench's samples), live heap (HeapAlloc)
and heap spans in use (HeapInuse) after a forced GC, wake-up latencies; then the
least-squares slopes against sessions in KiB per session (fixed costs excluded)."""
import json, sys, re
d, tr, sizes = sys.argv[1], sys.argv[2], [int(x) for x in sys.argv[3].split()]
def fit(pts):
    n = len(pts); mx = sum(x for x, _ in pts) / n; my = sum(y for _, y in pts) / n
    return sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)
rss, ha, hi, rows = [], [], [], []
for n in sizes:
    r = json.load(open(f"{d}/{tr}{n}.json"))
    m = dict(re.findall(r'# (\w+) = (\d+)', open(f"{d}/mem-{tr}{n}.txt").read()))
    s = r["server_samples"]; ok = r["ok"]
    b, h = s["before"]["rss_bytes"], s["held"]["rss_bytes"]
    rss.append((ok, h)); ha.append((ok, int(m["HeapAlloc"]))); hi.append((ok, int(m["HeapInuse"])))
    wp, wa = r["wake_parked"], r["wake_active"]
    rows.append((n, ok, r["failed"], b / 2**20, h / 2**20, int(m["HeapAlloc"]) / 2**20, int(m["HeapInuse"]) / 2**20,
                 (h - b) / ok / 1024, wp["n"], wp["p50_ms"], wp["p99_ms"], wa["n"], wa["p50_ms"], wa["p99_ms"],
                 r["metrics"] and [x["value"] for x in r["metrics"] if x["name"] == "logins_per_s"][0],
                 r["host"]["loadavg_start"], r["host"]["loadavg_end"], r["tls"]))
print(f"## {d} {tr}")
print("| N | ok | failed | RSS before | RSS held | HeapAlloc | HeapInuse | delta/N KiB | parked n,p50,p99 | active n,p50,p99 | logins/s | load | tls |")
for x in rows:
    print("| %d | %d | %d | %.1f | %.1f | %.1f | %.1f | %.1f | %d, %.3f, %.3f | %d, %.3f, %.3f | %.0f | %.1f–%.1f | %s |" % x)
print("slopes KiB/session: RSS %.2f, HeapAlloc %.2f, HeapInuse %.2f" % (fit(rss) / 1024, fit(ha) / 1024, fit(hi) / 1024))
