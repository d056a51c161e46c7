#!/usr/bin/env python3
"""bench/instructions.py: CPU instructions per request of cofferd, counted by
valgrind's callgrind. Unlike requests per second, the count does not depend on
what else the machine is doing, so two builds can be compared on a busy machine.

For each binary it starts `cofferd --dev` under callgrind on 127.0.0.1, writes
one KV v2 secret, then sends requests one after another over one keep-alive
connection, in two runs with a different number of requests. Startup and
shutdown cost the same in both runs, so (total(long) - total(short)) / (long -
short) is the cost of one request. Bounded: at most `--long` requests per run,
each with a 30 s socket timeout.

    bench/instructions.py --bin before=/path/to/old/cofferd --bin after=target/release/cofferd
"""

import argparse
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = "bench-root-token"
SCENARIOS = {
    "kv_read": ("GET", "/v1/secret/data/bench", None),
    "token_lookup": ("GET", "/v1/auth/token/lookup-self", None),
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(binary, scenario, count, work):
    port = free_port()
    out = os.path.join(work, f"cg.{os.getpid()}.{scenario}.{count}.out")
    log = open(os.path.join(work, "server.log"), "w")
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
         binary, "--dev", "--dev-root-token-id", ROOT,
         "--dev-listen-address", f"127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "COFFER_LOG_LEVEL": "warn"})
    try:
        deadline = time.time() + 120
        conn = None
        while time.time() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request("GET", "/v1/sys/health")
                conn.getresponse().read()
                break
            except OSError:
                conn = None
                time.sleep(0.5)
        if conn is None:
            sys.exit(f"cofferd did not start: see {work}/server.log")
        headers = {"X-Vault-Token": ROOT, "Content-Type": "application/json"}
        body = json.dumps({"data": {f"field{i}": "x" * 16 for i in range(8)}})
        conn.request("POST", "/v1/secret/data/bench", body=body, headers=headers)
        conn.getresponse().read()
        method, path, payload = SCENARIOS[scenario]
        for _ in range(count):
            conn.request(method, path, body=payload, headers=headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                sys.exit(f"{scenario}: answer {resp.status}")
        conn.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    total = 0
    with open(out) as f:
        for line in f:
            m = re.match(r"(summary|totals): (\d+)", line)
            if m:
                total = int(m.group(2))
    os.remove(out)
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", action="append", required=True, help="label=path")
    ap.add_argument("--short", type=int, default=200)
    ap.add_argument("--long", type=int, default=1200)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for scenario in args.scenarios.split(","):
            for spec in args.bin:
                label, path = spec.split("=", 1)
                short = run(path, scenario, args.short, work)
                long = run(path, scenario, args.long, work)
                per = (long - short) / (args.long - args.short)
                rows.append((scenario, label, per))
                print(f"{scenario} {label}: {per:,.0f} instructions per request", file=sys.stderr)
    print("| scenario | build | instructions per request |")
    print("|---|---|---:|")
    for scenario, label, per in rows:
        print(f"| {scenario} | {label} | {per:,.0f} |")


if __name__ == "__main__":
    main()
