"""bench/servers.py — what the side-by-side benches share: starting cofferd and
OpenBao on loopback, talking to them, stopping them, and reading their CPU.

Imported by pipelines.py, pki_issue.py and cert_login.py (run from any
directory: each puts bench/ first on sys.path). Every server started here
listens on 127.0.0.1 only; its log goes to a file in the caller's work
directory.
"""

import http.client
import json
import os
import re
import socket
import subprocess
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
_TARGET_DIR = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
COFFERD = os.environ.get("COFFERD_BIN", os.path.join(_TARGET_DIR, "release", "cofferd"))
BAO = os.environ.get("BAO_BIN", os.path.expanduser("~/.cache/coffer-compat-venv/bin/bao"))
CLK = os.sysconf("SC_CLK_TCK")
NAMES = {"coffer": "cofferd --dev", "openbao": "OpenBao -dev"}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _listen_address(proc, seconds=30):
    """The address cofferd prints once it listens; its stdout is drained afterwards
    so that it never blocks on a full pipe."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        m = re.match(r"==> cofferd listening on (\S+)", proc.stdout.readline() or "")
        if m:
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
            return m.group(1)
        if proc.poll() is not None:
            break
    proc.kill()
    raise SystemExit("cofferd did not start")


def start_cofferd(args, log):
    """cofferd with `args`; returns (process, address)."""
    proc = subprocess.Popen([COFFERD, *args], stdout=subprocess.PIPE, stderr=log, text=True)
    return proc, _listen_address(proc)


def start_openbao(args, log, tls=False):
    """`bao server -dev` on a free port with `args`; returns (process, address)."""
    port = free_port()
    proc = subprocess.Popen(
        [BAO, "server", "-dev", f"-dev-listen-address=127.0.0.1:{port}", "-log-level=warn", *args],
        stdout=log, stderr=log)
    return proc, f"{'https' if tls else 'http'}://127.0.0.1:{port}"


def start_dev(target, work, token):
    """`cofferd --dev` or `bao server -dev` (both in memory) with root token
    `token`; returns (process, address)."""
    log = open(os.path.join(work, f"{target}.log"), "w")
    if target == "coffer":
        return start_cofferd(["--dev", "--dev-listen-address", "127.0.0.1:0", "--dev-root-token-id",
                              token, "--log-level", "warn"], log)
    return start_openbao([f"-dev-root-token-id={token}"], log)


def conn_for(addr, ctx=None):
    """A keep-alive connection to `addr` (http:// or https:// with `ctx`)."""
    if addr.startswith("https://"):
        host, port = addr.removeprefix("https://").split(":")
        return http.client.HTTPSConnection(host, int(port), timeout=60, context=ctx)
    host, port = addr.removeprefix("http://").split(":")
    return http.client.HTTPConnection(host, int(port), timeout=60)


def call(conn, method, path, body=None, token=None):
    """One API call; returns (status, body bytes)."""
    headers = {"X-Vault-Token": token} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body)
        headers["Content-Type"] = "application/json"
    conn.request(method, "/v1/" + path, body=data, headers=headers)
    resp = conn.getresponse()
    return resp.status, resp.read()


def wait_ready(addr, proc, ctx=None):
    """Until `sys/health` answers 200 (30 s at most, or until the server exits)."""
    for _ in range(150):
        if proc.poll() is not None:
            raise SystemExit(f"{addr}: server exited with {proc.returncode}")
        try:
            if call(conn_for(addr, ctx), "GET", "sys/health")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{addr} not ready")


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cpu_ticks(pid):
    """utime + stime of `pid`, in clock ticks (divide by CLK for seconds)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def pct(xs, q):
    """The q-th percentile (0..100) of `xs`; NaN when empty."""
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q / 100 * len(xs)))]
