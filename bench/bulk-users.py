#!/usr/bin/env python3
"""Bulk user creation for the peers in bench/compare.sh (REGISTER=bulk).

Registering 10,000+ users one by one over XMPP (XEP-0077) took over 15 minutes on ejabberd on this
loaded machine; these two writers create user1..userN with one password in seconds instead:

  bulk-users.py piefxis N DOMAIN PASSWORD FILE [FIRST]
      an XEP-0227 file (urn:xmpp:pie:0) with userFIRST..userN (FIRST: 1) and plaintext passwords, for
      `ejabberdctl import_piefxis FILE` (ejabberd hashes them into its own SCRAM format on import). The
      import stops at the first user that exists already, and an ejabberdctl call gives up after about
      a minute (~6,000 users here): compare.sh imports in chunks.
  bulk-users.py prosody N DOMAIN PASSWORD DATA_PATH [ITERATIONS]
      Prosody's internal storage files (DATA_PATH/<host>/accounts/<user>.dat) in the exact form
      mod_auth_internal_hashed writes: hex stored_key/server_key, salt, iteration_count. One salt is
      shared by every account so the PBKDF2 runs once (here and in the client's SCRAM cache); that
      changes nothing on the server's side of a login.
"""
import hashlib
import hmac
import os
import sys


def piefxis(n, domain, password, path, first=1):
    q = lambda s: s.replace("&", "&amp;").replace("'", "&apos;").replace("<", "&lt;")
    with open(path, "w") as f:
        f.write("<?xml version='1.0' encoding='UTF-8'?>\n<server-data xmlns='urn:xmpp:pie:0'>\n")
        f.write(f"  <host jid='{q(domain)}'>\n")
        for i in range(first, n + 1):
            f.write(f"    <user name='user{i}' password='{q(password)}'/>\n")
        f.write("  </host>\n</server-data>\n")


def prosody_encode(s):
    # util.datamanager: every byte outside [%w_-] (and '.') is %-escaped, lower-case hex.
    return "".join(c if (c.isalnum() or c in "_-") else "%%%02x" % ord(c) for c in s)


def prosody(n, domain, password, data_path, iterations=10000):
    salt = "bench-salt-0000-0000-000000000000"
    salted = hashlib.pbkdf2_hmac("sha1", password.encode(), salt.encode(), iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha1).digest()
    stored_key = hashlib.sha1(client_key).hexdigest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha1).hexdigest()
    d = os.path.join(data_path, prosody_encode(domain), "accounts")
    os.makedirs(d, exist_ok=True)
    body = (
        "return {\n"
        f'\t["iteration_count"] = {iterations};\n'
        f'\t["salt"] = "{salt}";\n'
        f'\t["server_key"] = "{server_key}";\n'
        f'\t["stored_key"] = "{stored_key}";\n'
        "};\n"
    )
    for i in range(1, n + 1):
        with open(os.path.join(d, f"user{i}.dat"), "w") as f:
            f.write(body)


def main(argv):
    usage = "usage: bulk-users.py piefxis N DOMAIN PASSWORD FILE [FIRST] | prosody N DOMAIN PASSWORD DATA_PATH [ITERATIONS]"
    if len(argv) < 6 or argv[1] not in ("piefxis", "prosody") or not argv[2].isdigit():
        sys.exit(usage)
    n = int(argv[2])
    if argv[1] == "piefxis":
        piefxis(n, argv[3], argv[4], argv[5], int(argv[6]) if len(argv) > 6 else 1)
    else:
        prosody(n, argv[3], argv[4], argv[5], int(argv[6]) if len(argv) > 6 else 10000)


if __name__ == "__main__":
    main(sys.argv)
