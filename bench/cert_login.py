#!/usr/bin/env python3
"""bench/cert_login.py — auth/cert logins per second, cofferd against OpenBao, on loopback.

For each server it makes a TLS listener that asks for client certificates
(cofferd: a config-mode server on SQLite with `client_auth = "request"`, initialised
and unsealed with one share; OpenBao: `bao server -dev -dev-tls`, whose listener
asks for them by default), enables `auth/cert` trusting a CA made for the run
(EC P-256, by openssl), and then keeps CONNS keep-alive TLS connections, each
presenting a client certificate of that CA, logging in (`POST auth/cert/login`
with `name`) for DURATION seconds after WARMUP unmeasured seconds. Each login
verifies the connection's chain against the role and makes a token. It prints one
RESULT line per server: logins/s, p50/p99 latency, non-200 answers, and the
server's CPU over the window, so logins per core can be compared on a shared
machine. The handshake happens once per connection; what is measured is the login.

Usage:
  bench/cert_login.py                       # both servers
  TARGETS=coffer DURATION=5 bench/cert_login.py
Environment [default]:
  COFFERD_BIN [$CARGO_TARGET_DIR or target/release/cofferd]   BAO_BIN [~/.cache/coffer-compat-venv/bin/bao]
  TARGETS [coffer openbao]  DURATION [10]  WARMUP [2]  CONNS [4]  STORAGE [file|memory]
Every server it starts listens on 127.0.0.1 and is stopped on exit; every run is
bounded by DURATION. Exit status 0 when every answer was 200.
"""

import json
import os
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import servers  # noqa: E402
from servers import CLK, call, conn_for, cpu_ticks, pct, start_cofferd, stop, wait_ready  # noqa: E402

DURATION = float(os.environ.get("DURATION", "10"))
WARMUP = float(os.environ.get("WARMUP", "2"))
CONNS = int(os.environ.get("CONNS", "4"))
TARGETS = os.environ.get("TARGETS", "coffer openbao").split()
ROOT = "bench-root"
# cofferd's storage: a SQLite file by default (every token is written durably);
# STORAGE=memory uses in-memory SQLite, as OpenBao -dev keeps everything in memory.
STORAGE = os.environ.get("STORAGE", "file")


def sh(*args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_certs(work):
    """A CA, a server certificate for 127.0.0.1 and a client certificate (EC P-256)."""
    p = lambda n: os.path.join(work, n)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    sh("openssl", "req", "-x509", *ec, "-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", "2",
       "-subj", "/CN=bench CA", "-addext", "basicConstraints=critical,CA:TRUE",
       "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for name, ext in [("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
                      ("client", "extendedKeyUsage=clientAuth")]:
        with open(p(f"{name}.ext"), "w") as f:
            f.write(ext + "\n")
        sh("openssl", "req", *ec, "-keyout", p(f"{name}.key"), "-out", p(f"{name}.csr"),
           "-subj", f"/CN=bench-{name}")
        sh("openssl", "x509", "-req", "-in", p(f"{name}.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
           "-CAcreateserial", "-out", p(f"{name}.pem"), "-days", "1", "-extfile", p(f"{name}.ext"))
    return p


def context(p):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # loopback, a server made for the run
    ctx.load_cert_chain(p("client.pem"), p("client.key"))
    return ctx


def start_coffer(work, p, ctx):
    cfg = os.path.join(work, "coffer.toml")
    with open(cfg, "w") as f:
        url = "sqlite::memory:" if STORAGE == "memory" else f"sqlite://{work}/coffer.db"
        f.write(f'log_level = "warn"\n[storage]\nurl = "{url}"\n'
                f'[listener]\naddress = "127.0.0.1:0"\ntls_cert_file = "{p("server.pem")}"\n'
                f'tls_key_file = "{p("server.key")}"\nclient_auth = "request"\n')
    log = open(os.path.join(work, "coffer.log"), "w")
    proc, addr = start_cofferd(["--config", cfg], log)
    c = conn_for(addr, ctx)
    _, body = call(c, "PUT", "sys/init", {"secret_shares": 1, "secret_threshold": 1}, token=None)
    init = json.loads(body)
    call(c, "PUT", "sys/unseal", {"key": init["keys_base64"][0]}, token=None)
    return proc, addr, init["root_token"]


def start_openbao(work, ctx):
    log = open(os.path.join(work, "openbao.log"), "w")
    proc, addr = servers.start_openbao(["-dev-tls", f"-dev-root-token-id={ROOT}"], log, tls=True)
    wait_ready(addr, proc, ctx)
    return proc, addr, ROOT


def setup(addr, ctx, token, ca_pem):
    c = conn_for(addr, ctx)
    for method, path, body in [
        ("POST", "sys/auth/cert", {"type": "cert"}),
        ("POST", "auth/cert/certs/svc", {"certificate": ca_pem, "token_policies": "default",
                                          "token_ttl": "10m"}),
    ]:
        status, text = call(c, method, path, body, token)
        if status not in (200, 204):
            raise SystemExit(f"setup {path}: {status} {text[:200]!r}")


def load(addr, ctx, seconds):
    stop_at = time.time() + seconds
    lat, bad = [], {}
    lock = threading.Lock()

    def worker():
        c = conn_for(addr, ctx)
        while time.time() < stop_at:
            t0 = time.perf_counter()
            status, _ = call(c, "POST", "auth/cert/login", {"name": "svc"})
            dt = time.perf_counter() - t0
            with lock:
                if status == 200:
                    lat.append(dt)
                else:
                    bad[status] = bad.get(status, 0) + 1

    threads = [threading.Thread(target=worker) for _ in range(CONNS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return lat, bad


def main():
    work = tempfile.mkdtemp(prefix="cert-bench.")
    p = make_certs(work)
    ctx = context(p)
    ca_pem = open(p("ca.pem")).read()
    results, all_ok = [], True
    for target in TARGETS:
        proc, addr, token = start_coffer(work, p, ctx) if target == "coffer" else start_openbao(work, ctx)
        try:
            setup(addr, ctx, token, ca_pem)
            if WARMUP > 0:
                load(addr, ctx, WARMUP)
            t0, c0 = time.time(), cpu_ticks(proc.pid)
            lat, bad = load(addr, ctx, DURATION)
            elapsed, cpu = time.time() - t0, (cpu_ticks(proc.pid) - c0) / CLK
            rate, cores = len(lat) / elapsed, cpu / elapsed
            all_ok &= not bad
            print(f"RESULT target={target} logins_per_s={rate:.1f} p50_ms={pct(lat, 50) * 1000:.1f} "
                  f"p99_ms={pct(lat, 99) * 1000:.1f} server_cores={cores:.2f} "
                  f"per_core={rate / cores if cores else 0:.1f} non200={sum(bad.values())} "
                  f"conns={CONNS} seconds={DURATION:g}", flush=True)
            results.append((target, rate, pct(lat, 50) * 1000, pct(lat, 99) * 1000, cores, bad))
        finally:
            stop(proc)
    print()
    print("| server | logins/s | p50 ms | p99 ms | server cores | logins/s per core | non-200 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    names = {"coffer": f"cofferd (SQLite {STORAGE}, TLS request)", "openbao": "OpenBao -dev -dev-tls (in memory)"}
    for target, rate, p50, p99, cores, bad in results:
        per = rate / cores if cores else 0
        print(f"| {names[target]} | {rate:.1f} | {p50:.1f} | {p99:.1f} | {cores:.2f} | {per:.1f} | {sum(bad.values())} |")
    sys.exit(0 if all_ok else 3)


if __name__ == "__main__":
    main()
