#!/usr/bin/env python3
"""Where an idle session's heap goes (docs/benchmarks.md, issue 19).

  bench/heapitems.py heap-tcp10000.pb 10000 [heap-tcp17900.pb 17900 ...]

Reads heap profiles written by bench/idle-heap.sh (with `go tool pprof -traces`,
so go must be on PATH) and prints a markdown table: the live heap (inuse_space)
of each profile by what holds it, divided by the profile's number of sessions,
averaged over the profiles given. Each sampled stack goes to the first category
below whose pattern it matches (most specific first). The heap profiler samples
one allocation per 512 KiB, so a line is good to about +-100 B per session."""
import sys, re, collections, subprocess
cats = [
 ('AES-GCM states (2 per connection)', r'aes/gcm|aeadAESGCM|fips140/aes'),
 ('crypto/tls.Conn', r'^crypto/tls\.(Server|Client) '),
 ('TLS record and handshake buffers (rawInput, hand)', r'^bytes\.growSlice.*crypto/tls'),
 ('TLS secrets, key schedule', r'crypto/tls\.(?!\(\*listener\))|hkdf|tls13|mlkem|ecdh'),
 ('net/http: bufio, upgrade request, conn', r'^(bufio|net/textproto|net/url|context)\.|^net/http\.'),
 ('coder/websocket Conn', r'coder/websocket'),
 ('session (session.Session)', r'^bluetick/internal/session\.New'),
 ('kept presence', r'Compact|SetPresence|Canonical'),
 ('per-connection logger (slog)', r'slog'),
 ('timers (watchdog, congestion)', r'^time\.'),
 ('router entry', r'router\.'),
 ('blocklist cache', r'privacy\.'),
 ('PEP / caps', r'pep\.'),
 ('login throttle, SCRAM', r'auth\.'),
 ('socket (net.TCPConn, addresses, poll, admission)', r'^(net|syscall|internal/poll)\.|^bluetick/internal/admission'),
 ('poller entry (epoll)', r'c2s\.\(\*poller\)'),
 ('WebSocket transport, frame reader', r'c2s\.(newWSTransport|\(\*wsTransport\)|\(\*wsReader\)|wsAccept|\(\*Service\)\.WebSocketHandler)'),
 ('XML decoder and its builder scratch', r'xmlstream'),
 ('c2s stream, finisher (and the TCP transport)', r'c2s\.'),
 ('goroutine descriptors (runtime.g; stacks are not heap)', r'malg|newproc'),
]
def parse(v):
    m = re.match(r'([\d.]+)([kMG]?B)', v)
    return float(m.group(1)) * {'B': 1, 'kB': 1024, 'MB': 1024**2, 'GB': 1024**3}[m.group(2)]
args = sys.argv[1:]
agg = collections.Counter(); n_prof = 0; total = 0
for i in range(0, len(args), 2):
    pb, N = args[i], int(args[i+1]); n_prof += 1
    txt = subprocess.run(['go', 'tool', 'pprof', '-sample_index=inuse_space', '-traces', pb],
                         capture_output=True, text=True, check=True).stdout
    for b in txt.split('-----------+-------------------------------------------------------'):
        fr = []; val = 0
        for l in b.split('\n'):
            if not l.strip() or 'bytes:' in l: continue
            m = re.match(r'\s+(-?[\d.]+[kMG]?B)\s+(\S+)', l)
            if m: val = parse(m.group(1)); fr.append(m.group(2)); continue
            if fr: fr.append(l.strip().split()[0])
        if val <= 0: continue
        st = ' < '.join(fr); total += val / N
        for name, rx in cats:
            if re.search(rx, st): agg[name] += val / N; break
        else: agg['other (runtime, sqlite, metrics, ...)'] += val / N
print("| item | B/session |\n|---|---:|")
for k, v in agg.most_common(): print("| %s | %s |" % (k, format(round(v / n_prof), ',')))
print("| **total sampled** | **%s** |" % format(round(total / n_prof), ','))
