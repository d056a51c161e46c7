#!/usr/bin/env python3
"""bench/pki_issue.py — pki/issue per second, cofferd against OpenBao, on loopback.

For each server (cofferd --dev, bao server -dev; both in-memory) it enables pki,
generates an EC P-256 root, writes two roles (EC P-256 and RSA-2048 leaf keys,
allow_any_name, certificates stored as by default) and then, per key type, keeps
CONNS keep-alive connections issuing certificates for DURATION seconds (after
WARMUP unmeasured seconds). It prints one RESULT line per (server, key type):
issued/s, p50/p99 latency, non-200 answers, and the server's CPU over the window
(cores: 1.00 = one core busy), so issued/s per core can be compared on a shared
machine. The work is key generation and signing; the HTTP client is not the
bottleneck (a few hundred requests per second at most).

Usage:
  bench/pki_issue.py                               # both servers
  TARGETS=coffer DURATION=5 bench/pki_issue.py
Environment [default]:
  COFFERD_BIN  [$CARGO_TARGET_DIR or target/release/cofferd]   BAO_BIN [~/.cache/coffer-compat-venv/bin/bao]
  TARGETS [coffer openbao]  KEYS [ec rsa]  DURATION [10]  WARMUP [2]  CONNS [4]
Every server it starts listens on 127.0.0.1 and is stopped on exit; every run is
bounded by DURATION. Exit status 0 when every answer was 200.
"""

import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from servers import CLK, NAMES, call, conn_for, cpu_ticks, pct, start_dev, stop, wait_ready  # noqa: E402

TOKEN = "bench-root"
DURATION = float(os.environ.get("DURATION", "10"))
WARMUP = float(os.environ.get("WARMUP", "2"))
CONNS = int(os.environ.get("CONNS", "4"))
TARGETS = os.environ.get("TARGETS", "coffer openbao").split()
KEYS = os.environ.get("KEYS", "ec rsa").split()


def setup(addr):
    c = conn_for(addr)
    steps = [
        ("POST", "sys/mounts/pki", {"type": "pki", "config": {"max_lease_ttl": "87600h"}}),
        ("POST", "pki/root/generate/internal", {"common_name": "Bench Root", "key_type": "ec", "ttl": "8760h"}),
        ("POST", "pki/roles/ec", {"allow_any_name": True, "key_type": "ec", "key_bits": 256, "ttl": "1h"}),
        ("POST", "pki/roles/rsa", {"allow_any_name": True, "key_type": "rsa", "key_bits": 2048, "ttl": "1h"}),
    ]
    for method, path, body in steps:
        status, text = call(c, method, path, body, TOKEN)
        if status not in (200, 204):
            raise SystemExit(f"setup {path}: {status} {text[:200]!r}")


def load(addr, role, seconds):
    stop_at = time.time() + seconds
    lat, bad = [], {}
    lock = threading.Lock()

    def worker(i):
        c = conn_for(addr)
        n = 0
        while time.time() < stop_at:
            t0 = time.perf_counter()
            status, _ = call(c, "POST", f"pki/issue/{role}", {"common_name": f"svc-{i}-{n}.bench.internal"},
                             TOKEN)
            dt = time.perf_counter() - t0
            n += 1
            with lock:
                if status == 200:
                    lat.append(dt)
                else:
                    bad[status] = bad.get(status, 0) + 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(CONNS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return lat, bad


def main():
    work = tempfile.mkdtemp(prefix="pki-bench.")
    results, all_ok = [], True
    for target in TARGETS:
        proc, addr = start_dev(target, work, TOKEN)
        try:
            wait_ready(addr, proc)
            setup(addr)
            for key in KEYS:
                if WARMUP > 0:
                    load(addr, key, WARMUP)
                t0, c0 = time.time(), cpu_ticks(proc.pid)
                lat, bad = load(addr, key, DURATION)
                elapsed, cpu = time.time() - t0, (cpu_ticks(proc.pid) - c0) / CLK
                rate = len(lat) / elapsed
                cores = cpu / elapsed
                all_ok &= not bad
                line = (f"RESULT target={target} key={key} issued_per_s={rate:.1f} "
                        f"p50_ms={pct(lat, 50) * 1000:.1f} p99_ms={pct(lat, 99) * 1000:.1f} "
                        f"server_cores={cores:.2f} per_core={rate / cores if cores else 0:.1f} "
                        f"non200={sum(bad.values())} conns={CONNS} seconds={DURATION:g}")
                print(line, flush=True)
                results.append((target, key, rate, pct(lat, 50) * 1000, pct(lat, 99) * 1000, cores, bad))
        finally:
            stop(proc)
    print()
    print("| server | leaf key | issued/s | p50 ms | p99 ms | server cores | issued/s per core | non-200 |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    keys = {"ec": "EC P-256", "rsa": "RSA-2048"}
    for target, key, rate, p50, p99, cores, bad in results:
        per = rate / cores if cores else 0
        print(f"| {NAMES[target]} | {keys[key]} | {rate:.1f} | {p50:.1f} | {p99:.1f} | {cores:.2f} | {per:.1f} | {sum(bad.values())} |")
    sys.exit(0 if all_ok else 3)


if __name__ == "__main__":
    main()
