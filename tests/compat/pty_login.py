#!/usr/bin/env python3
"""Drives an interactive login (the real `bao login`) through a pseudo-terminal.

    pty_login.py --url OTPAUTH_URL --last LAST_STEP [--timeout S] [--prompt TEXT] -- CMD ARGS...

Starts CMD with a pty as its controlling terminal (stdin, stdout and stderr), waits
for TEXT (default "Enter the passphrase") in what it prints, then computes the next
TOTP code (totp.py: the lowest step above LAST_STEP the server accepts, waiting when
needed) and types it followed by Enter, and reads on until CMD exits.

Prints one JSON object: {"prompt_seen", "prompt_line", "echo_off", "step", "output",
"rc", "timed_out"}; "output" is everything CMD printed (prompt included) without
colour codes and carriage returns; "step" is the TOTP step typed; "echo_off" whether
the terminal's echo was off when the code was typed.
Exit status 0 unless the driver itself failed.
"""

import argparse
import json
import os
import pty
import re
import select
import signal
import sys
import termios
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import totp  # noqa: E402


ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def clean(raw):
    """Terminal output as text: colour codes and carriage returns removed."""
    return ANSI.sub("", raw.decode("utf-8", "replace")).replace("\r", "")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--last", type=int, required=True)
    ap.add_argument("--timeout", type=float, default=25.0, help="seconds for the prompt, and again for the end")
    ap.add_argument("--max-wait", type=float, default=35.0, help="longest wait for the next TOTP step")
    ap.add_argument("--prompt", default="Enter the passphrase")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        ap.error("no command")
    secret = totp.secret_from_url(args.url)

    pid, fd = pty.fork()
    if pid == 0:  # child: the pty is stdin/stdout/stderr and the controlling terminal
        try:
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)

    buf = b""
    result = {"prompt_seen": False, "prompt_line": "", "echo_off": None, "step": None,
              "output": "", "rc": None, "timed_out": False}

    def read_until(pred, seconds):
        nonlocal buf
        deadline = time.time() + seconds
        while not pred():
            left = deadline - time.time()
            if left <= 0:
                return False
            r, _, _ = select.select([fd], [], [], min(left, 0.5))
            if fd in r:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # EIO: the child closed the terminal
                    return pred()
                if not chunk:
                    return pred()
                buf += chunk
        return True

    if read_until(lambda: args.prompt.encode() in buf, args.timeout):
        result["prompt_seen"] = True
        m = re.search(re.escape(args.prompt) + r"[^\n]*", clean(buf))
        result["prompt_line"] = m.group(0).strip() if m else ""
        # A secret prompt turns the terminal's echo off; type only once it has, so the
        # code is not echoed back by the terminal (bounded wait).
        for _ in range(40):
            try:
                if not termios.tcgetattr(fd)[3] & termios.ECHO:
                    result["echo_off"] = True
                    break
            except termios.error:
                break
            time.sleep(0.05)
        else:
            result["echo_off"] = False
        try:
            step, code = totp.next_code(secret, args.last, args.max_wait)
            result["step"] = step
            os.write(fd, code.encode() + b"\r")
        except Exception as e:  # noqa: BLE001 - report it; the caller's checks fail
            result["driver_error"] = f"{type(e).__name__}: {e}"
            os.write(fd, b"\r")

    # Read until the child closes the pty (EIO) or the time is up.
    deadline = time.time() + args.timeout
    while time.time() < deadline:
        r, _, _ = select.select([fd], [], [], 0.5)
        if fd in r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
        else:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                result["rc"] = os.waitstatus_to_exitcode(status)
                # drain what is left
                try:
                    while select.select([fd], [], [], 0.2)[0]:
                        chunk = os.read(fd, 4096)
                        if not chunk:
                            break
                        buf += chunk
                except OSError:
                    pass
                break
    if result["rc"] is None:
        for _ in range(50):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                result["rc"] = os.waitstatus_to_exitcode(status)
                break
            time.sleep(0.1)
        else:
            result["timed_out"] = True
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            result["rc"] = os.waitstatus_to_exitcode(status)
    os.close(fd)
    result["output"] = clean(buf)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
