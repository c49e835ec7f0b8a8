#!/usr/bin/env python3
"""AES-256-GCM vectors for web/test/aesgcm.test.mjs, made by an
implementation independent of the browser's: pyca/cryptography (OpenSSL).

  python3 aesgcm_vectors.py > aesgcm-vectors.json    (the committed file)
  python3 aesgcm_vectors.py encrypt KEYHEX IVHEX < plain > cipher
  python3 aesgcm_vectors.py decrypt KEYHEX IVHEX < cipher > plain
"""
import json
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def enc(key, iv, data):
    return AESGCM(key).encrypt(iv, data, None)  # ciphertext || 16-byte tag


if len(sys.argv) == 4:
    op, key, iv = sys.argv[1], bytes.fromhex(sys.argv[2]), bytes.fromhex(sys.argv[3])
    data = sys.stdin.buffer.read()
    out = enc(key, iv, data) if op == "encrypt" else AESGCM(key).decrypt(iv, data, None)
    sys.stdout.buffer.write(out)
    sys.exit(0)

# Deterministic inputs so the file is reproducible.
def pattern(n, seed):
    x, out = seed, bytearray()
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out.append((x >> 16) & 0xFF)
    return bytes(out)

cases = [
    ("empty file", 0, 12),
    ("one byte", 1, 12),
    ("short text", 31, 12),
    ("one block", 16, 12),
    ("20 KB", 20 * 1024 + 7, 12),
    ("16-byte IV (old Conversations links)", 5000, 16),
]
out = []
for i, (name, n, ivlen) in enumerate(cases):
    key = pattern(32, 1000 + i)
    iv = pattern(ivlen, 2000 + i)
    plain = b"Bluetick XEP-0454 vector\n"[:n] if n <= 25 else pattern(n, 3000 + i)
    ct = enc(key, iv, plain)
    out.append({"name": name, "key": key.hex(), "iv": iv.hex(), "plain": plain.hex(), "cipher": ct.hex()})
json.dump({"by": "python3 cryptography AESGCM", "vectors": out}, sys.stdout, indent=1)
sys.stdout.write("\n")
