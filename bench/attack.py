#!/usr/bin/env python3
"""bench/attack.py - what unauthenticated attacks cost cofferd, as peak RSS.

Starts a release cofferd (config mode, SQLite in a temp dir, plain HTTP on
127.0.0.1 only) for each attack, initialises and unseals it, runs the attack and
reports the server's VmHWM (peak resident memory, /proc/<pid>/status) before and
after, whether a fresh client was still served, and the answers seen.

Attacks (each bounded in requests and in time):
  bodies  4 parallel 30 MiB bodies of [[],[],...] to secret/data/x, no token
  logins  60 concurrent userpass logins for unknown users (one barrier)
  idle    1,100 idle TCP connections from 127.0.0.1, then a request from 127.0.0.2

Usage: bench/attack.py [--bin target/release/cofferd] [--attacks bodies,logins,idle]
The bin defaults to $CARGO_TARGET_DIR/release/cofferd (or target/release/cofferd);
build it first with `cargo build --release -p coffer-server --bin cofferd`.
Prints a Markdown table (paste into BENCHMARKS.md). Exit status 0 when every
attack stayed under its stated bound (and, for idle, a client from another
address was served), 3 otherwise. This is a benchmark, not a
test: the figures depend on the machine.
"""

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

MIB = 1024 * 1024
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


class Server:
    """One cofferd with its own temp dir; always stopped by stop()."""

    def __init__(self, binary, extra_top="", nofile=None):
        self.dir = tempfile.mkdtemp(prefix="coffer-attack-")
        config = os.path.join(self.dir, "coffer.toml")
        with open(config, "w") as f:
            f.write(
                f'{extra_top}\nlog_level = "warn"\n[storage]\n'
                f'url = "sqlite://{self.dir}/coffer.db"\n'
                '[listener]\naddress = "127.0.0.1:0"\ntls_disable = true\n'
            )
        self.out = open(os.path.join(self.dir, "stdout"), "w+")

        def limits():
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.proc = subprocess.Popen(
            [binary, "--config", config],
            stdout=self.out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=limits,
        )
        deadline = time.time() + 60
        self.port = None
        while time.time() < deadline and self.port is None:
            if self.proc.poll() is not None:
                raise RuntimeError("cofferd exited: " + self.log())
            for line in self.log().splitlines():
                if "listening on " in line:
                    self.port = int(line.rsplit(":", 1)[1])
            time.sleep(0.05)
        if self.port is None:
            self.stop()
            raise RuntimeError("cofferd did not start")

    def log(self):
        self.out.flush()
        with open(self.out.name) as f:
            return f.read()

    def call(self, method, path, token=None, body=None, timeout=30):
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/v1/{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
        )
        if token:
            req.add_header("X-Vault-Token", token)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                text = r.read()
                return r.status, (json.loads(text) if text else None)
        except urllib.error.HTTPError as e:
            return e.code, None

    def ready(self):
        status, init = self.call("PUT", "sys/init", body={"secret_shares": 1, "secret_threshold": 1})
        assert status == 200, status
        status, _ = self.call("PUT", "sys/unseal", body={"key": init["keys"][0]})
        assert status == 200, status
        root = init["root_token"]
        assert self.call("POST", "sys/mounts/secret", root, {"type": "kv", "options": {"version": "2"}})[0] == 204
        assert self.call("POST", "sys/auth/userpass", root, {"type": "userpass"})[0] == 204
        return root

    def hwm(self):
        return status_kb(self.proc.pid, "VmHWM")

    def rss(self):
        return status_kb(self.proc.pid, "VmRSS")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def served_from(port, source="127.0.0.1", timeout=10):
    """A fresh client's sys/health, from `source`: the status line or the error."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
        s.sendall(b"GET /v1/sys/health HTTP/1.1\r\nHost: coffer\r\nConnection: close\r\n\r\n")
        line = s.recv(4096).split(b"\r\n", 1)[0].decode(errors="replace")
        s.close()
        return line or "closed"
    except OSError as e:
        return f"error: {e.__class__.__name__}"


def attack_bodies(server, root):
    body = b"[" + b",".join([b"[]"] * (30 * MIB // 3)) + b"]"
    head = (
        "POST /v1/secret/data/x HTTP/1.1\r\nHost: coffer\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    answers = []
    lock = threading.Lock()

    def one():
        answer = "no answer"
        try:
            s = socket.create_connection(("127.0.0.1", server.port), timeout=60)
            try:
                s.sendall(head + body)
            except OSError:
                pass  # the server answered and closed without reading: expected
            try:
                line = s.recv(4096).split(b"\r\n", 1)[0].decode(errors="replace")
                answer = line or "closed"
            except OSError as e:
                answer = f"reset ({e.__class__.__name__})"
            s.close()
        except OSError as e:
            answer = f"error: {e.__class__.__name__}"
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return answers


def attack_logins(server, root):
    n = 60
    barrier = threading.Barrier(n, timeout=60)
    answers = []
    lock = threading.Lock()

    def one(i):
        barrier.wait()
        status, _ = server.call("POST", f"auth/userpass/login/nobody-{i}", body={"password": "not-the-password"}, timeout=120)
        with lock:
            answers.append(status)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    return answers


def attack_idle(server, root):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    conns, refused = [], 0
    for _ in range(1100):
        try:
            conns.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
        except OSError:
            refused += 1
    time.sleep(1)  # let the server accept (or refuse) the backlog
    # Which of the held connections the server kept: a closed one reads EOF at once.
    kept = 0
    for c in conns:
        c.setblocking(False)
        try:
            kept += 0 if c.recv(1) == b"" else 1
        except BlockingIOError:
            kept += 1
        except OSError:
            pass
    other = served_from(server.port, source="127.0.0.2")
    for c in conns:
        c.close()
    return [f"{len(conns)} opened, {refused} failed to open, {kept} not closed by the server", f"client from 127.0.0.2: {other}"]


ATTACKS = {
    # name: (function, description, bound over the idle server's VmHWM, extra config, server nofile)
    "bodies": (attack_bodies, "4 x 30 MiB `[[],...]`, no token, in parallel", 64 * MIB, "", None),
    "logins": (attack_logins, "60 concurrent logins for unknown users", None, "", None),
    # The shipped unit used to leave the default soft limit of 1024: run under it.
    "idle": (attack_idle, "1,100 idle connections from one address (server at 1024 open files)", 64 * MIB, "", 1024),
}


def main():
    ap = argparse.ArgumentParser()
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    ap.add_argument("--bin", default=os.path.join(target, "release", "cofferd"))
    ap.add_argument("--attacks", default="bodies,logins,idle")
    args = ap.parse_args()
    if not os.path.exists(args.bin):
        sys.exit(f"{args.bin} not found: cargo build --release -p coffer-server --bin cofferd")
    cores = os.cpu_count() or 1
    rows, ok = [], True
    for name in args.attacks.split(","):
        fn, what, bound, extra, nofile = ATTACKS[name]
        if bound is None:
            # The hashing pool: one 19 MiB Argon2 buffer per core, plus slack.
            bound = cores * 19 * MIB + 32 * MIB
        server = Server(args.bin, extra, nofile)
        try:
            root = server.ready()
            before = server.hwm()
            started = time.time()
            answers = fn(server, root)
            elapsed = time.time() - started
            time.sleep(0.5)
            after, rss = server.hwm(), server.rss()
            fresh = served_from(server.port)
            alive = server.proc.poll() is None
        finally:
            server.stop()
        # Memory under its bound, the server alive, and no client locked out.
        locked_out = any("error:" in str(a) for a in answers)
        within = after - before <= bound and alive and not locked_out
        ok &= within
        if all(isinstance(a, int) for a in answers):
            counts = {}
            for a in answers:
                counts[a] = counts.get(a, 0) + 1
            seen = ", ".join(f"{k} x{v}" for k, v in sorted(counts.items()))
        else:
            seen = "; ".join(sorted(set(answers)))
        rows.append(
            f"| {what} | {before / MIB:.0f} MiB | {after / MIB:.0f} MiB | {rss / MIB:.0f} MiB "
            f"| +{bound / MIB:.0f} MiB | {'yes' if within else '**NO**'} | {seen} | {fresh} | {elapsed:.1f} s |"
        )
        print(f"{name}: done", file=sys.stderr)
    print(f"- {cores} cpus, {args.bin}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print()
    print("| attack | VmHWM before | VmHWM after | VmRSS after | bound (over before) | within | answers | fresh client after | took |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(r)
    sys.exit(0 if ok else 3)


if __name__ == "__main__":
    main()
