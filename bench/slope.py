#!/usr/bin/env python3
"""Memory-per-session table and least-squares slope from `bluetick bench`
conns runs: slope.py OUTDIR "bluetick ejabberd prosody" "5000 10000 19000"
reads OUTDIR/<server>-conns<N>.json and prints markdown."""
import json
import os
import sys

out, servers, sizes = sys.argv[1], sys.argv[2].split(), [int(n) for n in sys.argv[3].split()]
print("\nMemory per session: server RSS (whole process tree) before login and after holding N idle sessions;")
print("the slope is the least-squares fit of held RSS against sessions: the marginal cost of one more session.\n")
print("| server | sessions (ok) | RSS before MiB | RSS held MiB | KiB/session (delta/N) |")
print("|---|---:|---:|---:|---:|")
fits = {}
for srv in servers:
    pts = []
    for n in sizes:
        f = os.path.join(out, f"{srv}-conns{n}.json")
        if not os.path.exists(f):
            continue
        r = json.load(open(f))
        s = r.get("server_samples", {})
        b = s.get("before", {}).get("rss_bytes", 0)
        h = s.get("held", {}).get("rss_bytes", 0)
        ok = r.get("ok", 0)
        if ok:
            pts.append((ok, h))
        per = (h - b) / ok / 1024 if ok else 0
        print(f"| {srv} | {n} ({ok}) | {b / 2**20:.1f} | {h / 2**20:.1f} | {per:.1f} |")
    if len(pts) >= 2:
        mx = sum(p[0] for p in pts) / len(pts)
        my = sum(p[1] for p in pts) / len(pts)
        fits[srv] = sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts) / 1024
print()
print(f"| server | slope KiB/session | {servers[0]}/server |")
print("|---|---:|---:|")
for srv, k in fits.items():
    base = servers[0]  # bluetick, or bluetick-ws for the WebSocket runs
    ratio = f"{fits[base] / k:.2f}" if base in fits and k else "–"
    print(f"| {srv} | {k:.1f} | {ratio} |")
