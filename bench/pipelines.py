#!/usr/bin/env python3
"""bench/pipelines.py — what a CI pipeline asks for, per second: cofferd against OpenBao.

Three scenarios, each on both servers, on loopback:

  approle  POST auth/approle/login (role_id + secret_id of a role with unlimited
           secret-id uses, token_ttl 10m): makes a token
  jwt      POST auth/jwt/login with a CI-like JWT (ES256, signed by a key made for
           the run and configured as `jwt_validation_pubkeys`; role with
           bound_audiences, bound_subject, bound_claims, claim_mappings): makes a token
  dbcreds  GET database/creds/deploy: creates a PostgreSQL role (CREATE ROLE ...
           LOGIN PASSWORD ... VALID UNTIL, GRANT CONNECT) with a 1h lease

Servers: `cofferd --dev` (release build, in-memory SQLite) and `bao server -dev`
(OpenBao, in memory), both on 127.0.0.1, configured identically through the HTTP
API. Both database engines point at the same PostgreSQL server and the same
database, created for the run (`pipelines_bench_<pid>`) and dropped at the end
together with every role the run created (the usernames are collected from the
answers; roles are cluster-wide, so nothing else is touched). Each database
connection uses the same root user and max_open_connections.

Load: CONNS client processes (not threads: no GIL between them), each with one
keep-alive connection, for WARMUP unmeasured seconds and then at most DURATION
seconds or MAX_REQUESTS requests in all, whichever comes first. The two servers
run one after the other, scenario by scenario (coffer, openbao, coffer, ...), so
slow drift of the machine's load falls on both. Printed: one RESULT line per
(scenario, server) and a markdown table with requests/s, p50/p99, non-200
answers, the server's CPU over the window (utime+stime, cores), requests per
server core-second, and PostgreSQL's CPU for dbcreds.

Usage:
  bench/pipelines.py
  SCENARIOS="approle jwt" DURATION=5 TARGETS=coffer bench/pipelines.py
Environment [default]:
  COFFERD_BIN [$CARGO_TARGET_DIR or target/release/cofferd]
  BAO_BIN [~/.cache/coffer-compat-venv/bin/bao]   PG_URL_BASE [postgresql://postgres@127.0.0.1:5432]
  TARGETS [coffer openbao]  SCENARIOS [approle jwt dbcreds]  DURATION [10]  WARMUP [2]
  CONNS [4]  MAX_REQUESTS [200000]  DB_MAX_CONNS [4]
Needs: python3 with `cryptography` (to sign the JWTs), psql. Exit status 0 when
every answer was 200, 3 otherwise.
"""

import base64
import http.client
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from servers import CLK, NAMES, call, conn_for, cpu_ticks, pct, start_dev, stop, wait_ready  # noqa: E402

TOKEN = "bench-root"
DURATION = float(os.environ.get("DURATION", "10"))
WARMUP = float(os.environ.get("WARMUP", "2"))
CONNS = int(os.environ.get("CONNS", "4"))
MAX_REQUESTS = int(os.environ.get("MAX_REQUESTS", "200000"))
DB_MAX_CONNS = int(os.environ.get("DB_MAX_CONNS", "4"))
TARGETS = os.environ.get("TARGETS", "coffer openbao").split()
SCENARIOS = os.environ.get("SCENARIOS", "approle jwt dbcreds").split()
PG_URL_BASE = os.environ.get("PG_URL_BASE", "postgresql://postgres@127.0.0.1:5432")
ISSUER = "https://ci.bench.invalid"
AUDIENCE = "https://coffer.bench.invalid"
SUBJECT = "repo:org/app:ref:refs/heads/main"


# --------------------------------------------------------------------------- PostgreSQL CPU

def pg_ticks():
    """CPU of every PostgreSQL process (backends come and go; the sum over
    /proc of processes named postgres, minus nothing: only deltas are used)."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        name = raw[raw.index("(") + 1:raw.rindex(")")]
        if name.startswith("postgres"):
            fields = raw.rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total


# --------------------------------------------------------------------------- JWT

def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def make_jwts(key, count):
    """`count` distinct CI-like tokens (GitHub Actions claims), valid for 2 h."""
    now = int(time.time())
    header = b64url(json.dumps({"alg": "ES256", "typ": "JWT", "kid": "bench"}).encode())
    out = []
    for i in range(count):
        claims = {
            "iss": ISSUER, "aud": AUDIENCE, "sub": SUBJECT, "iat": now - 5, "nbf": now - 5,
            "exp": now + 7200, "jti": f"bench-{i}", "repository": "org/app",
            "ref": "refs/heads/main", "environment": "prod", "actor": "bench",
            "workflow": "deploy", "run_id": str(1000 + i),
        }
        signing_input = f"{header}.{b64url(json.dumps(claims).encode())}"
        der = key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        out.append(f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}")
    return out


# --------------------------------------------------------------------------- setup

def psql(db, sql):
    subprocess.run(["psql", f"{PG_URL_BASE}/{db}", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)


def setup(addr, pubkey_pem, db):
    """The same configuration on either server; returns (role_id, secret_id)."""
    c = conn_for(addr)

    def must(method, path, body=None):
        status, text = call(c, method, path, body, TOKEN)
        if status not in (200, 204):
            raise SystemExit(f"setup {method} {path} on {addr}: {status} {text[:300]!r}")
        return json.loads(text) if text else {}

    must("POST", "sys/auth/approle", {"type": "approle"})
    must("POST", "auth/approle/role/deploy", {"token_policies": "default", "token_ttl": "10m",
                                              "token_max_ttl": "30m", "secret_id_num_uses": 0})
    role_id = must("GET", "auth/approle/role/deploy/role-id")["data"]["role_id"]
    secret_id = must("POST", "auth/approle/role/deploy/secret-id", {})["data"]["secret_id"]

    must("POST", "sys/auth/jwt", {"type": "jwt"})
    must("POST", "auth/jwt/config", {"jwt_validation_pubkeys": [pubkey_pem], "bound_issuer": ISSUER})
    must("POST", "auth/jwt/role/ci", {
        "role_type": "jwt", "user_claim": "sub", "bound_audiences": [AUDIENCE],
        "bound_subject": SUBJECT, "bound_claims_type": "string",
        "bound_claims": {"repository": "org/app", "environment": "prod"},
        "claim_mappings": {"repository": "repository", "ref": "ref"},
        "token_policies": ["default"], "token_ttl": "15m", "token_max_ttl": "30m",
    })

    must("POST", "sys/mounts/database", {"type": "database"})
    host_part = PG_URL_BASE.split("@", 1)[1]
    must("POST", "database/config/app", {
        "plugin_name": "postgresql-database-plugin",
        "connection_url": f"postgresql://{{{{username}}}}:{{{{password}}}}@{host_part}/{db}?sslmode=disable",
        "username": "postgres", "password": "bench-unused-password", "allowed_roles": "deploy",
        "max_open_connections": DB_MAX_CONNS,
    })
    must("POST", "database/roles/deploy", {
        "db_name": "app", "default_ttl": "1h", "max_ttl": "2h",
        "creation_statements": [
            "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';",
            f"GRANT CONNECT ON DATABASE {db} TO \"{{{{name}}}}\";",
        ],
    })
    return role_id, secret_id


# --------------------------------------------------------------------------- load

def request_for(scenario, ctx, i):
    if scenario == "approle":
        return "POST", "auth/approle/login", {"role_id": ctx["role_id"], "secret_id": ctx["secret_id"]}, None
    if scenario == "jwt":
        jwts = ctx["jwts"]
        return "POST", "auth/jwt/login", {"role": "ci", "jwt": jwts[i % len(jwts)]}, None
    return "GET", "database/creds/deploy", None, TOKEN


def client(addr, scenario, ctx, seconds, budget, out):
    """One process, one connection: requests until `seconds` pass or `budget` is used."""
    conn = conn_for(addr)
    lat, bad, users = [], {}, []
    stop_at = time.time() + seconds
    i = 0
    while time.time() < stop_at and i < budget:
        method, path, body, token = request_for(scenario, ctx, i)
        i += 1
        t0 = time.perf_counter()
        try:
            status, text = call(conn, method, path, body, token)
        except (OSError, http.client.HTTPException):
            conn = conn_for(addr)
            bad["socket"] = bad.get("socket", 0) + 1
            continue
        dt = time.perf_counter() - t0
        if status == 200:
            lat.append(dt)
            if scenario == "dbcreds":
                users.append(json.loads(text)["data"]["username"])
        else:
            bad[status] = bad.get(status, 0) + 1
    out.put((lat, bad, users))


def load(addr, scenario, ctx, seconds, total):
    q = mp.Queue()
    per = max(1, total // CONNS)
    procs = [mp.Process(target=client, args=(addr, scenario, ctx, seconds, per, q)) for _ in range(CONNS)]
    for p in procs:
        p.start()
    lat, bad, users = [], {}, []
    for _ in procs:
        l, b, u = q.get(timeout=seconds + 120)
        lat += l
        users += u
        for k, v in b.items():
            bad[k] = bad.get(k, 0) + v
    for p in procs:
        p.join(timeout=30)
    return lat, bad, users


# --------------------------------------------------------------------------- main

def main():
    work = tempfile.mkdtemp(prefix="pipelines-bench.")
    db = f"pipelines_bench_{os.getpid()}"
    key = ec.generate_private_key(ec.SECP256R1())
    pubkey_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    jwts = make_jwts(key, 64)
    psql("postgres", f"CREATE DATABASE {db}")
    servers, created_users = {}, []
    results, all_ok = [], True
    try:
        for target in TARGETS:
            proc, addr = start_dev(target, work, TOKEN)
            servers[target] = (proc, addr)
            wait_ready(addr, proc)
            role_id, secret_id = setup(addr, pubkey_pem, db)
            servers[target] = (proc, addr, {"role_id": role_id, "secret_id": secret_id, "jwts": jwts})
        for scenario in SCENARIOS:
            for target in TARGETS:
                proc, addr, ctx = servers[target]
                if WARMUP > 0:
                    _, _, users = load(addr, scenario, ctx, WARMUP, MAX_REQUESTS)
                    created_users += users
                t0, c0, pg0 = time.time(), cpu_ticks(proc.pid), pg_ticks()
                lat, bad, users = load(addr, scenario, ctx, DURATION, MAX_REQUESTS)
                elapsed = time.time() - t0
                cores = (cpu_ticks(proc.pid) - c0) / CLK / elapsed
                pg_cores = (pg_ticks() - pg0) / CLK / elapsed
                created_users += users
                rate = len(lat) / elapsed
                all_ok &= not bad
                row = (scenario, target, len(lat), elapsed, rate, pct(lat, 50) * 1e3, pct(lat, 99) * 1e3,
                       cores, pg_cores, bad)
                results.append(row)
                print(f"RESULT scenario={scenario} target={target} ok={len(lat)} seconds={elapsed:.1f} "
                      f"per_s={rate:.1f} p50_ms={row[5]:.2f} p99_ms={row[6]:.2f} server_cores={cores:.2f} "
                      f"pg_cores={pg_cores:.2f} per_core={rate / cores if cores else 0:.0f} "
                      f"non200={sum(bad.values())} {json.dumps(bad) if bad else ''}", flush=True)
    finally:
        for entry in servers.values():
            stop(entry[0])
        try:
            psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
            for i in range(0, len(created_users), 500):
                batch = created_users[i:i + 500]
                psql("postgres", "".join(f'DROP ROLE IF EXISTS "{u}";' for u in batch))
        except subprocess.CalledProcessError as e:
            print(f"cleanup failed: {e.stderr[:300]!r}", file=sys.stderr)
    print()
    print(f"{CONNS} client processes, one keep-alive connection each; {DURATION:g} s windows "
          f"(at most {MAX_REQUESTS} requests) after {WARMUP:g} s warm-up")
    print()
    print("| scenario | server | ok | req/s | p50 ms | p99 ms | server cores | req per server core-s "
          "| PostgreSQL cores | non-200 |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for scenario, target, ok, _, rate, p50, p99, cores, pg, bad in results:
        per = rate / cores if cores else 0
        pgs = f"{pg:.2f}" if scenario == "dbcreds" else "-"
        print(f"| {scenario} | {NAMES[target]} | {ok} | {rate:.0f} | {p50:.2f} | {p99:.2f} | {cores:.2f} "
              f"| {per:.0f} | {pgs} | {sum(bad.values())} |")
    sys.exit(0 if all_ok else 3)


if __name__ == "__main__":
    main()
