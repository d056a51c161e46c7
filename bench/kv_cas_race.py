#!/usr/bin/env python3
"""Check-and-set race probe for a KV v2 mount of any Vault-compatible server.

Sends N writes to one key at the same instant, all carrying the same
`options.cas` (the key's current version), and reports how many were accepted.
A correct server accepts exactly one; every further 200 is a write that was
acknowledged and then lost.

    python3 bench/kv_cas_race.py http://127.0.0.1:8200 TOKEN [KEY] [N] [ROUNDS]

Loopback only. Standard library only. Exit status 0 when every round accepted
exactly one write, 1 otherwise, 2 on usage errors.
"""

import http.client
import json
import sys
import threading
from urllib.parse import urlparse


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    url = urlparse(sys.argv[1])
    token = sys.argv[2]
    key = sys.argv[3] if len(sys.argv) > 3 else "cas-race"
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 16
    rounds = int(sys.argv[5]) if len(sys.argv) > 5 else 5
    if url.hostname not in ("127.0.0.1", "localhost", "::1"):
        print("refusing a non-loopback address", file=sys.stderr)
        return 2
    host, port = url.hostname, url.port or 8200
    headers = {"X-Vault-Token": token, "Content-Type": "application/json"}

    def call(conn, method, path, body=None):
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, (json.loads(raw) if raw else {})

    admin = http.client.HTTPConnection(host, port, timeout=30)
    status, _ = call(admin, "POST", f"/v1/secret/data/{key}", json.dumps({"data": {"seed": "1"}}))
    if status != 200:
        print(f"seed write failed: HTTP {status}", file=sys.stderr)
        return 2

    all_ok = True
    for _ in range(rounds):
        _, meta = call(admin, "GET", f"/v1/secret/metadata/{key}")
        current = meta["data"]["current_version"]
        conns = [http.client.HTTPConnection(host, port, timeout=30) for _ in range(n)]
        for c in conns:
            c.connect()
        barrier = threading.Barrier(n)
        results = [None] * n

        def write(i):
            body = json.dumps({"options": {"cas": current}, "data": {"writer": str(i)}})
            barrier.wait()
            status, doc = call(conns[i], "POST", f"/v1/secret/data/{key}", body)
            results[i] = (status, (doc.get("data") or {}).get("version") if status == 200 else None)

        threads = [threading.Thread(target=write, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        accepted = sorted(v for s, v in results if s == 200)
        _, meta = call(admin, "GET", f"/v1/secret/metadata/{key}")
        after = meta["data"]["current_version"]
        verdict = "ok" if len(accepted) == 1 else "LOST WRITES"
        all_ok &= len(accepted) == 1
        print(f"cas={current}: {len(accepted)} of {n} concurrent writes accepted "
              f"(versions returned {accepted}); current_version now {after} -> {verdict}")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
