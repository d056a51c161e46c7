#!/usr/bin/env python3
"""RFC 6238 TOTP for the userpass + MFA checks of run.sh (and hvac_compat.py / pty_login.py).

Codes are computed here, from the secret in an otpauth:// URL, never by the server
under test: HMAC-SHA1 over the big-endian 8-byte step counter, dynamic truncation,
6 digits, 30-second steps.

A step can be used once per user (cofferd refuses every step at or before the last
one used; OpenBao refuses a code it has seen), and the server accepts one step of
skew either way. `next` therefore picks the lowest usable step above the last one
used and waits (bounded) when that step is not yet inside the server's window.

    totp.py next URL LAST_STEP [MAX_WAIT]  -> "STEP CODE" (may sleep up to MAX_WAIT s, default 35)
    totp.py wrong URL                      -> a 6-digit code matching no step within +-2 of now
    totp.py code URL STEP                  -> the code of STEP
    totp.py secret URL                     -> the base32 secret
"""

import base64
import hashlib
import hmac
import struct
import sys
import time
import urllib.parse

PERIOD = 30
DIGITS = 6
# A previous step is only used while at least this many seconds of the current one
# remain, so it is still inside the server's window when the request arrives.
MARGIN = 6


def secret_from_url(url):
    q = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)
    for key in ("period", "digits"):
        if key in q and int(q[key][0]) != {"period": PERIOD, "digits": DIGITS}[key]:
            raise ValueError(f"unsupported {key} {q[key][0]} in {url!r}")
    if q.get("algorithm", ["SHA1"])[0].upper() != "SHA1":
        raise ValueError(f"unsupported algorithm in {url!r}")
    return q["secret"][0]


def code_at(secret_b32, step):
    s = secret_b32.strip().replace(" ", "").upper()
    key = base64.b32decode(s + "=" * (-len(s) % 8))
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF
    return str(value % 10**DIGITS).zfill(DIGITS)


def pick_step(last_step, now=None):
    """(step, seconds_to_wait) for the next code: the lowest step above last_step
    that the server will accept once the wait is over."""
    now = time.time() if now is None else now
    cur = int(now // PERIOD)
    remaining = PERIOD - (now % PERIOD)
    lowest = cur - 1 if remaining > MARGIN else cur
    step = max(int(last_step) + 1, lowest)
    if step <= cur + 1:
        return step, 0.0
    # step is accepted from the start of step - 1 on; add a little margin.
    return step, (step - 1) * PERIOD - now + 0.5


def next_code(secret_b32, last_step, max_wait=35.0):
    step, wait = pick_step(last_step)
    if wait > max_wait:
        raise RuntimeError(f"step {step} needs a {wait:.0f}s wait (more than {max_wait}s)")
    if wait > 0:
        print(f"# totp: waiting {wait:.1f}s for step {step} to come into the window", file=sys.stderr, flush=True)
        time.sleep(wait)
    return step, code_at(secret_b32, step)


def wrong_code(secret_b32, now=None):
    cur = int((time.time() if now is None else now) // PERIOD)
    near = {code_at(secret_b32, s) for s in range(cur - 2, cur + 3)}
    c = int(code_at(secret_b32, cur))
    for k in range(1, 1000):
        cand = str((c + 500000 + k) % 10**DIGITS).zfill(DIGITS)
        if cand not in near:
            return cand
    raise RuntimeError("no wrong code found")


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 64
    cmd, url = argv[1], argv[2]
    secret = secret_from_url(url)
    if cmd == "next":
        step, code = next_code(secret, int(argv[3]), float(argv[4]) if len(argv) > 4 else 35.0)
        print(step, code)
    elif cmd == "wrong":
        print(wrong_code(secret))
    elif cmd == "code":
        print(code_at(secret, int(argv[3])))
    elif cmd == "secret":
        print(secret)
    else:
        print(__doc__, file=sys.stderr)
        return 64
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except Exception as e:  # noqa: BLE001 - the caller compares output, print the reason
        print(f"<totp error: {type(e).__name__}: {e}>")
        sys.exit(3)
