#!/usr/bin/env python3
"""Compatibility checks for Coffer driven by the real hvac client library.

Run against a FRESH (uninitialised, sealed) server: the script initialises it,
unseals it, mounts KV v2, exercises KV v2, token, ACL policy and capabilities
endpoints, then seals and unseals it again.

    python hvac_compat.py --addr http://127.0.0.1:8200 [--state FILE] [--failed-names FILE] [--target cofferd|openbao]

With --mfa-url it runs ONLY the userpass + TOTP login checks (run.sh scenario E),
against a server where the user already has a TOTP factor:

    python hvac_compat.py --addr ADDR --target T --mfa-url otpauth://... --mfa-user alice \
        --mfa-password PW --mfa-last LAST_STEP [--failed-names FILE]

With --audit-dir it runs ONLY the audit device checks (run.sh scenario F), against an
unsealed server where a file audit device is enabled at file/ and the caller computed
the device's HMAC of --audit-input (sys/audit-hash/file):

    python hvac_compat.py --addr ADDR --target T --audit-token ROOT --audit-dir DIR \
        --audit-input VALUE --audit-hash HMAC [--failed-names FILE]

One line per check on stdout: "ok  - NAME" or "FAIL - NAME: got ..., expected ...".
The caller (run.sh) counts those lines. Exit status: 0 when every check passed.
"""

import argparse
import json
import sys
import time
import traceback

import hvac
import hvac.exceptions as hx

PASSED = 0
FAILED = 0
FAILED_NAMES_FILE = None
_MISSING = object()


def _short(value, limit=300):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...(cut)"


def ok(name):
    global PASSED
    PASSED += 1
    print(f"ok  - hvac: {name}", flush=True)


FAILED_NAMES = []


def fail(name, detail):
    global FAILED
    FAILED += 1
    FAILED_NAMES.append(f"hvac: {name}")
    print(f"FAIL - hvac: {name}: {detail}", flush=True)


def check(name, fn, expected=_MISSING, pred=None, want=""):
    """Run fn(); compare with expected (==) or pred(got). Returns got (None on error)."""
    try:
        got = fn()
    except Exception as e:  # any client error is a failed check, never a crash
        fail(name, f"raised {type(e).__name__}: {_short(str(e))}")
        return None
    if expected is not _MISSING and got != expected:
        fail(name, f"got {_short(got)}, expected {_short(expected)}")
    elif pred is not None and not _safe(pred, got):
        fail(name, f"got {_short(got)}, expected {want}")
    else:
        ok(name)
    return got


def _safe(pred, got):
    try:
        return bool(pred(got))
    except Exception:
        return False


def check_raises(name, fn, exc_type):
    try:
        got = fn()
    except exc_type:
        ok(name)
        return
    except Exception as e:
        fail(name, f"raised {type(e).__name__}: {_short(str(e))}, expected {exc_type.__name__}")
        return
    fail(name, f"returned {_short(got)}, expected {exc_type.__name__} to be raised")


def pick(d, *keys):
    return {k: d[k] for k in keys}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", required=True)
    ap.add_argument("--state", help="write init output (keys, root token) here as JSON")
    ap.add_argument("--failed-names", help="write the names of failed checks here, one a line")
    ap.add_argument("--target", default="cofferd", choices=["cofferd", "openbao"],
                    help="server kind; cofferd-only checks (built-in tier policies) are skipped for openbao")
    ap.add_argument("--mfa-url", help="run ONLY the userpass + TOTP MFA checks (see userpass_mfa), with this otpauth:// URL")
    ap.add_argument("--mfa-user", default="alice")
    ap.add_argument("--mfa-password")
    ap.add_argument("--mfa-last", type=int, default=0, help="the last TOTP step used for this user")
    ap.add_argument("--audit-dir", help="run ONLY the audit device checks (see audit_devices); the device file/ logs here")
    ap.add_argument("--audit-token", help="a root token (audit checks)")
    ap.add_argument("--audit-input", help="a value whose HMAC the caller computed with sys/audit-hash/file")
    ap.add_argument("--audit-hash", help="that HMAC (hmac-sha256:<hex>)")
    args = ap.parse_args()
    global FAILED_NAMES_FILE
    FAILED_NAMES_FILE = args.failed_names
    if args.mfa_url:
        userpass_mfa(args)
        return
    if args.audit_dir:
        audit_devices(args)
        return

    anon = hvac.Client(url=args.addr, timeout=15)

    # ---- init / unseal -------------------------------------------------
    check("sys.is_initialized() is False on a fresh server", anon.sys.is_initialized, False)
    check(
        "sys.read_seal_status() on a fresh server: sealed, not initialised",
        lambda: pick(anon.sys.read_seal_status(), "initialized", "sealed", "type"),
        {"initialized": False, "sealed": True, "type": "shamir"},
    )
    init = check(
        "sys.initialize(secret_shares=3, secret_threshold=2) returns 3 keys and a root token",
        lambda: anon.sys.initialize(secret_shares=3, secret_threshold=2),
        pred=lambda r: len(r["keys"]) == 3 and len(r["keys_base64"]) == 3 and r["root_token"],
        want="3 keys, 3 keys_base64, a root_token",
    )
    if not init:
        print("hvac: cannot continue without initialising the server", flush=True)
        return
    if args.state:
        with open(args.state, "w") as f:
            json.dump(init, f)
    keys, root = init["keys"], init["root_token"]

    check("sys.is_initialized() is True after initialize", anon.sys.is_initialized, True)
    check("sys.is_sealed() is True after initialize", anon.sys.is_sealed, True)
    check(
        "sys.read_seal_status() after initialize: t=2 n=3 progress=0",
        lambda: pick(anon.sys.read_seal_status(), "t", "n", "progress", "sealed"),
        {"t": 2, "n": 3, "progress": 0, "sealed": True},
    )
    check(
        "sys.submit_unseal_key(one key) -> progress 1, still sealed",
        lambda: pick(anon.sys.submit_unseal_key(keys[0]), "progress", "sealed"),
        {"progress": 1, "sealed": True},
    )
    check(
        "sys.submit_unseal_key(same key again) is ignored: 200, progress stays 1 (as OpenBao)",
        lambda: pick(anon.sys.submit_unseal_key(keys[0]), "progress", "sealed"),
        {"progress": 1, "sealed": True},
    )
    check(
        "sys.submit_unseal_key(reset=True) -> progress 0",
        lambda: anon.sys.submit_unseal_key(reset=True)["progress"],
        0,
    )
    check(
        "sys.submit_unseal_keys(two hex keys) unseals",
        lambda: anon.sys.submit_unseal_keys(keys[1:3])["sealed"],
        False,
    )
    check(
        "sys.read_seal_status() after unseal: sealed False, initialized True",
        lambda: pick(anon.sys.read_seal_status(), "initialized", "sealed"),
        {"initialized": True, "sealed": False},
    )
    wait_active(anon)
    check(
        "sys.read_health_status(method='GET') is initialised and unsealed",
        lambda: pick(anon.sys.read_health_status(method="GET"), "initialized", "sealed", "standby"),
        {"initialized": True, "sealed": False, "standby": False},
    )

    client = hvac.Client(url=args.addr, token=root, timeout=15)
    check("is_authenticated() is True with the root token", client.is_authenticated, True)
    bogus = hvac.Client(url=args.addr, token="s.this-token-does-not-exist", timeout=15)
    check("is_authenticated() is False with a wrong token", bogus.is_authenticated, False)

    # ---- mounts ---------------------------------------------------------
    check(
        "sys.enable_secrets_engine('kv', path='secret', options={'version': '2'})",
        lambda: client.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"}).status_code,
        pred=lambda s: s in (200, 204),
        want="HTTP 200 or 204",
    )
    check(
        "sys.list_mounted_secrets_engines()['data'] has secret/ as kv version 2",
        lambda: (lambda m: (m["type"], m["options"]["version"]))(
            client.sys.list_mounted_secrets_engines()["data"]["secret/"]
        ),
        ("kv", "2"),
    )
    check(
        "sys.list_auth_methods()['data'] has token/",
        lambda: client.sys.list_auth_methods()["data"]["token/"]["type"],
        "token",
    )
    check_raises(
        "sys.enable_secrets_engine on a used path raises InvalidRequest",
        lambda: client.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"}),
        hx.InvalidRequest,
    )

    kv = client.secrets.kv.v2
    p = "app/db"

    # ---- KV v2 ------------------------------------------------------------
    check(
        "kv.v2.create_or_update_secret -> version 1",
        lambda: kv.create_or_update_secret(p, secret={"user": "app", "pass": "one"})["data"]["version"],
        1,
    )
    check(
        "kv.v2.read_secret_version -> data",
        lambda: kv.read_secret_version(p, raise_on_deleted_version=True)["data"]["data"],
        {"user": "app", "pass": "one"},
    )
    check(
        "kv.v2.create_or_update_secret(cas=1) -> version 2",
        lambda: kv.create_or_update_secret(p, secret={"user": "app", "pass": "two"}, cas=1)["data"]["version"],
        2,
    )
    check_raises(
        "kv.v2.create_or_update_secret(cas=1) on version 2 raises InvalidRequest",
        lambda: kv.create_or_update_secret(p, secret={"user": "x"}, cas=1),
        hx.InvalidRequest,
    )
    check(
        "kv.v2.patch -> version 3",
        lambda: kv.patch(p, secret={"pass": "three", "extra": "e"})["data"]["version"],
        3,
    )
    check(
        "kv.v2.read_secret_version after patch merges keys",
        lambda: kv.read_secret_version(p, raise_on_deleted_version=True)["data"]["data"],
        {"user": "app", "pass": "three", "extra": "e"},
    )
    check(
        "kv.v2.read_secret_version(version=1) -> old data",
        lambda: kv.read_secret_version(p, version=1, raise_on_deleted_version=True)["data"]["data"],
        {"user": "app", "pass": "one"},
    )
    check(
        "GET secret/subkeys/app/db (hvac adapter) -> key structure",
        lambda: client.adapter.get("/v1/secret/subkeys/app/db")["data"]["subkeys"],
        {"user": None, "pass": None, "extra": None},
    )
    check(
        "kv.v2.create_or_update_secret of a second secret -> version 1",
        lambda: kv.create_or_update_secret("app/other", secret={"k": "v"})["data"]["version"],
        1,
    )
    check("kv.v2.list_secrets('') -> ['app/']", lambda: kv.list_secrets("")["data"]["keys"], ["app/"])
    check(
        "kv.v2.list_secrets('app') -> ['db', 'other']",
        lambda: sorted(kv.list_secrets("app")["data"]["keys"]),
        ["db", "other"],
    )
    check_raises("kv.v2.list_secrets on a missing folder raises InvalidPath", lambda: kv.list_secrets("nope"), hx.InvalidPath)

    check(
        "kv.v2.delete_latest_version_of_secret -> 204",
        lambda: kv.delete_latest_version_of_secret(p).status_code,
        204,
    )
    check(
        "kv.v2.read_secret_version(raise_on_deleted_version=False) shows deletion_time, no data",
        lambda: (lambda r: (r["data"]["data"], bool(r["data"]["metadata"]["deletion_time"])))(
            kv.read_secret_version(p, raise_on_deleted_version=False)
        ),
        (None, True),
    )
    check_raises(
        "kv.v2.read_secret_version(raise_on_deleted_version=True) on deleted raises InvalidPath",
        lambda: kv.read_secret_version(p, raise_on_deleted_version=True),
        hx.InvalidPath,
    )
    check(
        "kv.v2.undelete_secret_versions([3]) -> 204",
        lambda: kv.undelete_secret_versions(p, versions=[3]).status_code,
        204,
    )
    check(
        "kv.v2.read_secret_version after undelete -> data back",
        lambda: kv.read_secret_version(p, raise_on_deleted_version=True)["data"]["data"]["pass"],
        "three",
    )
    check(
        "kv.v2.destroy_secret_versions([1]) -> 204",
        lambda: kv.destroy_secret_versions(p, versions=[1]).status_code,
        204,
    )
    check_raises(
        "kv.v2.read_secret_version(version=1) after destroy raises InvalidPath",
        lambda: kv.read_secret_version(p, version=1, raise_on_deleted_version=False),
        hx.InvalidPath,
    )
    check(
        "kv.v2.read_secret_metadata: current_version 3, v1 destroyed, v3 live",
        lambda: (lambda d: (d["current_version"], d["versions"]["1"]["destroyed"], d["versions"]["3"]["deletion_time"]))(
            kv.read_secret_metadata(p)["data"]
        ),
        (3, True, ""),
    )
    check(
        "kv.v2.update_metadata(max_versions=4, cas_required=True, custom_metadata)",
        lambda: kv.update_metadata(
            p, max_versions=4, cas_required=True, custom_metadata={"owner": "team-a"}
        ).status_code,
        204,
    )
    check(
        "kv.v2.read_secret_metadata reflects update_metadata",
        lambda: (lambda d: (d["max_versions"], d["cas_required"], d["custom_metadata"]))(
            kv.read_secret_metadata(p)["data"]
        ),
        (4, True, {"owner": "team-a"}),
    )
    check_raises(
        "cas_required: create_or_update_secret without cas raises InvalidRequest",
        lambda: kv.create_or_update_secret(p, secret={"a": "b"}),
        hx.InvalidRequest,
    )
    check(
        "kv.v2.configure(max_versions=7) then read_configuration",
        lambda: (kv.configure(max_versions=7), kv.read_configuration()["data"]["max_versions"])[1],
        7,
    )
    check(
        "kv.v2.delete_metadata_and_all_versions -> 204",
        lambda: kv.delete_metadata_and_all_versions(p).status_code,
        204,
    )
    check_raises("kv.v2.read_secret_metadata after delete raises InvalidPath", lambda: kv.read_secret_metadata(p), hx.InvalidPath)
    check_raises(
        "kv.v2.read_secret_version of a missing secret raises InvalidPath",
        lambda: kv.read_secret_version("never/was", raise_on_deleted_version=True),
        hx.InvalidPath,
    )
    check_raises(
        "wrong token: kv.v2.read_secret_version raises Forbidden",
        lambda: bogus.secrets.kv.v2.read_secret_version("app/other", raise_on_deleted_version=True),
        hx.Forbidden,
    )
    check_raises(
        "wrong token: kv.v2.create_or_update_secret raises Forbidden",
        lambda: bogus.secrets.kv.v2.create_or_update_secret("app/x", secret={"a": "b"}),
        hx.Forbidden,
    )

    # ---- cubbyhole ----------------------------------------------------------
    check("write_data('cubbyhole/hv') with a field", lambda: client.write_data("cubbyhole/hv", data={"k": "v"}) is not False, True)
    check("read('cubbyhole/hv') -> its data", lambda: client.read("cubbyhole/hv")["data"], {"k": "v"})
    check("list('cubbyhole/') names it", lambda: "hv" in client.list("cubbyhole/")["data"]["keys"], True)
    other = hvac.Client(url=args.addr, token=client.auth.token.create(policies=["default"], ttl="10m")["auth"]["client_token"], timeout=15)
    check("another token reads nothing at cubbyhole/hv", lambda: other.read("cubbyhole/hv"), None)
    check("delete('cubbyhole/hv') then read -> None", lambda: (client.delete("cubbyhole/hv"), client.read("cubbyhole/hv"))[1], None)

    # ---- tokens -----------------------------------------------------------
    tok = client.auth.token
    created = check(
        "auth.token.create(policies=['dev'], ttl='1h') -> renewable service token",
        lambda: tok.create(policies=["dev"], ttl="1h")["auth"],
        pred=lambda a: a["client_token"] and a["accessor"] and a["lease_duration"] == 3600 and a["renewable"] is True
        and "dev" in a["policies"],
        want="client_token, accessor, lease_duration 3600, renewable, 'dev' in policies",
    )
    if created:
        t, acc = created["client_token"], created["accessor"]
        check(
            "auth.token.lookup(token) -> id, policies, ttl",
            lambda: (lambda d: (d["id"], sorted(d["policies"]), 3500 < d["ttl"] <= 3600))(tok.lookup(t)["data"]),
            (t, ["default", "dev"], True),
        )
        check(
            "auth.token.lookup_accessor(accessor) -> same accessor, no id",
            lambda: (lambda d: (d["accessor"], d["id"]))(tok.lookup_accessor(acc)["data"]),
            (acc, ""),
        )
        as_t = hvac.Client(url=args.addr, token=t, timeout=15)
        check("is_authenticated() is True with the created token", as_t.is_authenticated, True)
        check(
            "auth.token.lookup_self() as the created token",
            lambda: as_t.auth.token.lookup_self()["data"]["accessor"],
            acc,
        )
        check(
            "auth.token.renew(token, increment='2h') -> lease_duration 7200",
            lambda: tok.renew(t, increment="2h")["auth"]["lease_duration"],
            7200,
        )
        check(
            "auth.token.renew_self() as the created token",
            lambda: as_t.auth.token.renew_self(increment="1h")["auth"]["lease_duration"],
            3600,
        )
        check("auth.token.revoke(token) -> 204", lambda: tok.revoke(t).status_code, 204)
        check("is_authenticated() is False for the revoked token", as_t.is_authenticated, False)
        check_raises(
            "auth.token.lookup(revoked token) raises Forbidden (OpenBao: 403 bad token)",
            lambda: tok.lookup(t),
            hx.Forbidden,
        )
        check_raises(
            "revoked token: kv read raises Forbidden",
            lambda: as_t.secrets.kv.v2.read_secret_version("app/other", raise_on_deleted_version=True),
            hx.Forbidden,
        )

    orphan = check(
        "auth.token.create_orphan(ttl='30m') -> orphan token",
        lambda: tok.create_orphan(policies=["dev"], ttl="30m")["auth"],
        pred=lambda a: a["orphan"] is True and a["lease_duration"] == 1800,
        want="orphan True, lease_duration 1800",
    )
    if orphan:
        check(
            "auth.token.revoke_accessor(accessor) -> 204",
            lambda: tok.revoke_accessor(orphan["accessor"]).status_code,
            204,
        )
        check_raises(
            "auth.token.lookup_accessor(revoked accessor) raises InvalidRequest",
            lambda: tok.lookup_accessor(orphan["accessor"]),
            hx.InvalidRequest,
        )
    child = check("auth.token.create(ttl='10m') for revoke_self", lambda: tok.create(ttl="10m")["auth"]["client_token"])
    if child:
        as_c = hvac.Client(url=args.addr, token=child, timeout=15)
        check("auth.token.revoke_self() -> 204", lambda: as_c.auth.token.revoke_self().status_code, 204)
        check("is_authenticated() is False after revoke_self", as_c.is_authenticated, False)

    check_raises(
        "wrong token: auth.token.lookup_self raises Forbidden",
        lambda: bogus.auth.token.lookup_self(),
        hx.Forbidden,
    )

    # ---- ACL policies and capabilities ----------------------------------------
    app_hcl = (
        'path "secret/data/app/*" {\n  capabilities = ["read"]\n}\n\n'
        'path "secret/metadata/app/*" {\n  capabilities = ["list", "read"]\n}\n'
    )
    wanted = {"default", "root"}
    if args.target == "cofferd":
        # cofferd installs the tier policies at init; OpenBao has none (reference run).
        wanted |= {"read-only", "developer", "emergency-admin"}
    check(
        "sys.list_acl_policies() after init has default, root"
        + (" and the tiers read-only, developer, emergency-admin" if args.target == "cofferd" else "")
        + (" (tiers skipped: OpenBao has none)" if args.target != "cofferd" else ""),
        lambda: wanted <= set(client.sys.list_acl_policies()["data"]["keys"]),
        True,
    )
    check(
        "sys.create_or_update_acl_policy('hvac-app', HCL text) -> 204",
        lambda: client.sys.create_or_update_acl_policy("hvac-app", app_hcl).status_code,
        204,
    )
    check(
        "sys.read_acl_policy('hvac-app') -> name and the HCL text unchanged",
        lambda: (lambda d: (d["name"], d["policy"]))(client.sys.read_acl_policy("hvac-app")["data"]),
        ("hvac-app", app_hcl),
    )
    check(
        "sys.list_acl_policies() includes hvac-app",
        lambda: "hvac-app" in client.sys.list_acl_policies()["data"]["keys"],
        True,
    )
    check(
        "sys.create_or_update_acl_policy('hvac-json', dict) (JSON policy, pretty printed) -> 204",
        lambda: client.sys.create_or_update_acl_policy(
            "hvac-json", {"path": {"secret/data/json/*": {"capabilities": ["read", "list"]}}}
        ).status_code,
        204,
    )
    check_raises(
        "sys.create_or_update_acl_policy with an HCL syntax error raises InvalidRequest",
        lambda: client.sys.create_or_update_acl_policy("hvac-broken", 'path "secret/*" {\n  capabilities = ["read"\n'),
        hx.InvalidRequest,
    )
    check_raises(
        "sys.create_or_update_acl_policy('root', ...) raises InvalidRequest",
        lambda: client.sys.create_or_update_acl_policy("root", app_hcl),
        hx.InvalidRequest,
    )
    check_raises(
        "sys.read_acl_policy of a missing policy raises InvalidPath",
        lambda: client.sys.read_acl_policy("hvac-no-such"),
        hx.InvalidPath,
    )
    # legacy sys/policy endpoints
    check(
        "sys.create_or_update_policy('hvac-legacy', HCL) (legacy sys/policy) -> 204",
        lambda: client.sys.create_or_update_policy("hvac-legacy", app_hcl).status_code,
        204,
    )
    check(
        "sys.read_policy('hvac-legacy') (legacy) -> rules",
        lambda: client.sys.read_policy("hvac-legacy")["rules"],
        app_hcl,
    )
    check(
        "sys.list_policies() (legacy) -> policies include hvac-app and hvac-legacy",
        lambda: {"hvac-app", "hvac-legacy"} <= set(client.sys.list_policies()["policies"]),
        True,
    )
    check("sys.delete_policy('hvac-legacy') (legacy) -> 204", lambda: client.sys.delete_policy("hvac-legacy").status_code, 204)

    limited = check(
        "auth.token.create(policies=['hvac-app', 'hvac-json'])",
        lambda: tok.create(policies=["hvac-app", "hvac-json"], ttl="1h")["auth"],
        pred=lambda a: a["client_token"] and sorted(a["policies"]) == ["default", "hvac-app", "hvac-json"],
        want="a token with policies default, hvac-app, hvac-json",
    )
    if limited:
        lt, la = limited["client_token"], limited["accessor"]
        as_l = hvac.Client(url=args.addr, token=lt, timeout=15)
        check(
            "limited token: kv.v2.read_secret_version('app/other') works",
            lambda: as_l.secrets.kv.v2.read_secret_version("app/other", raise_on_deleted_version=True)["data"]["data"],
            {"k": "v"},
        )
        check_raises(
            "limited token: kv.v2.create_or_update_secret('app/other') raises Forbidden",
            lambda: as_l.secrets.kv.v2.create_or_update_secret("app/other", secret={"k": "x"}),
            hx.Forbidden,
        )
        check_raises(
            "limited token: sys.create_or_update_acl_policy raises Forbidden",
            lambda: as_l.sys.create_or_update_acl_policy("hvac-escalate", app_hcl),
            hx.Forbidden,
        )
        check(
            "limited token: sys.get_capabilities(paths) (capabilities-self) -> read / deny",
            lambda: (lambda d: (d["secret/data/app/x"], d["secret/data/other"]))(
                as_l.sys.get_capabilities(paths=["secret/data/app/x", "secret/data/other"])["data"]
            ),
            (["read"], ["deny"]),
        )
        check(
            "limited token: the JSON policy (hvac-json) is in force: list, read on secret/data/json/y",
            lambda: as_l.sys.get_capabilities(paths=["secret/data/json/y"])["data"]["secret/data/json/y"],
            ["list", "read"],
        )
        check(
            "root: sys.get_capabilities(paths, token=...) (sys/capabilities)",
            lambda: (lambda d: (d["secret/data/app/x"], sorted(d["secret/metadata/app/x"])))(
                client.sys.get_capabilities(paths=["secret/data/app/x", "secret/metadata/app/x"], token=lt)["data"]
            ),
            (["read"], ["list", "read"]),
        )
        check(
            "root: sys.get_capabilities(paths, accessor=...) (sys/capabilities-accessor)",
            lambda: client.sys.get_capabilities(paths=["secret/data/other"], accessor=la)["data"]["secret/data/other"],
            ["deny"],
        )
        check(
            "root: sys.get_capabilities(paths) for itself -> root",
            lambda: client.sys.get_capabilities(paths=["secret/data/app/x"])["data"]["secret/data/app/x"],
            ["root"],
        )
        check(
            "raw client.adapter.post('/v1/sys/capabilities-self', json={'paths': [1 path]})['capabilities'] (top level, as in the API docs)",
            lambda: as_l.adapter.post("/v1/sys/capabilities-self", json={"paths": ["secret/data/app/x"]})["capabilities"],
            ["read"],
        )
        check_raises(
            "limited token: sys.get_capabilities(token=root's) (sys/capabilities, no access) raises Forbidden",
            lambda: as_l.sys.get_capabilities(paths=["secret/data/app/x"], token=root),
            hx.Forbidden,
        )
    check("sys.delete_acl_policy('hvac-app') -> 204", lambda: client.sys.delete_acl_policy("hvac-app").status_code, 204)
    check(
        "sys.list_acl_policies() after delete: hvac-app gone",
        lambda: "hvac-app" in client.sys.list_acl_policies()["data"]["keys"],
        False,
    )
    check_raises(
        "sys.read_acl_policy('hvac-app') after delete raises InvalidPath",
        lambda: client.sys.read_acl_policy("hvac-app"),
        hx.InvalidPath,
    )
    if limited:
        check_raises(
            "limited token after its policy was deleted: kv read raises Forbidden",
            lambda: as_l.secrets.kv.v2.read_secret_version("app/other", raise_on_deleted_version=True),
            hx.Forbidden,
        )
    check("sys.delete_acl_policy('hvac-json') -> 204", lambda: client.sys.delete_acl_policy("hvac-json").status_code, 204)

    # ---- key management, leader -----------------------------------------
    term = check(
        "sys.get_encryption_key_status()['data']['term'] is 1",
        lambda: client.sys.get_encryption_key_status()["data"]["term"],
        1,
    )
    check(
        "sys.rotate_encryption_key() then term is 2",
        lambda: (client.sys.rotate_encryption_key(), client.sys.get_encryption_key_status()["data"]["term"])[1],
        2 if term == 1 else _MISSING,
    )
    check(
        "sys.read_leader_status()['ha_enabled'] is a bool",
        lambda: client.sys.read_leader_status()["ha_enabled"],
        pred=lambda v: isinstance(v, bool),
        want="a bool",
    )

    # ---- seal, unseal, data intact ------------------------------------------
    check("sys.seal() -> 204", lambda: client.sys.seal().status_code, 204)
    check("sys.is_sealed() is True after seal", anon.sys.is_sealed, True)
    check_raises(
        "kv read while sealed raises VaultDown",
        lambda: kv.read_secret_version("app/other", raise_on_deleted_version=True),
        hx.VaultDown,
    )
    check(
        "sys.submit_unseal_keys(base64 keys) unseals again",
        lambda: anon.sys.submit_unseal_keys(init["keys_base64"][0:2])["sealed"],
        False,
    )
    wait_active(anon)
    check(
        "data intact after seal/unseal",
        lambda: kv.read_secret_version("app/other", raise_on_deleted_version=True)["data"]["data"],
        {"k": "v"},
    )


def userpass_mfa(args):
    """userpass login with a TOTP second factor, against a server where args.mfa_user
    already has a confirmed factor (run.sh scenario E): password step, then
    sys/mfa/validate. Uses at most one new TOTP step above args.mfa_last (waiting for
    it when needed)."""
    import totp  # tests/compat/totp.py, next to this script

    secret = totp.secret_from_url(args.mfa_url)
    user, password = args.mfa_user, args.mfa_password

    def password_step():
        c = hvac.Client(url=args.addr, timeout=15)
        return c, c.auth.userpass.login(user, password)

    def requirement(resp):
        req = resp["auth"]["mfa_requirement"]
        constraints = list(req["mfa_constraints"].values())
        method = constraints[0]["any"][0]
        return req["mfa_request_id"], method

    # hvac has no helper for sys/mfa/validate (2.4.0); the raw adapter call is what
    # hvac users write. client.sys.validate_mfa is used when a later hvac has it.
    has_helper = hasattr(hvac.Client(url=args.addr).sys, "validate_mfa")
    import importlib.metadata

    print(f"# hvac {importlib.metadata.version('hvac')}: sys.validate_mfa "
          + ("exists" if has_helper else "does not exist; raw adapter.post('/v1/sys/mfa/validate') is used"), flush=True)

    def validate(client, request_id, method_id, code):
        payload = {method_id: [code]}
        if has_helper:
            return client.sys.validate_mfa(mfa_request_id=request_id, mfa_payload=payload)
        return client.adapter.post("/v1/sys/mfa/validate", json={"mfa_request_id": request_id, "mfa_payload": payload})

    c1, r1 = None, None

    def first():
        nonlocal c1, r1
        c1, r1 = password_step()
        return r1

    check(
        "auth.userpass.login(username, password) returns auth.mfa_requirement (request id, one TOTP method, "
        "uses_passcode) and no client_token",
        first,
        pred=lambda r: r["auth"]["client_token"] == ""
        and requirement(r)[0]
        and len(r["auth"]["mfa_requirement"]["mfa_constraints"]) == 1
        and requirement(r)[1]["type"] == "totp"
        and requirement(r)[1]["uses_passcode"] is True,
        want="auth.client_token '' and mfa_requirement {mfa_request_id, mfa_constraints: one {any: [{type: totp, id, uses_passcode: true}]}}",
    )
    if not r1:
        return
    check("after the password step alone: is_authenticated() is False", c1.is_authenticated, False)
    req_id, method = requirement(r1)
    method_id = method["id"]
    check_raises(
        "sys/mfa/validate with a wrong code raises Forbidden (OpenBao: 403)",
        lambda: validate(c1, req_id, method_id, totp.wrong_code(secret)),
        hx.Forbidden,
    )

    c2, r2 = password_step()
    req2 = requirement(r2)[0]
    step, code = totp.next_code(secret, args.mfa_last)
    done = check(
        "sys/mfa/validate {mfa_request_id, mfa_payload: {method id: [code]}} finishes the login: a client_token",
        lambda: validate(c2, req2, method_id, code)["auth"],
        pred=lambda a: a["client_token"] and a["metadata"]["username"] == user,
        want="auth.client_token set, auth.metadata.username " + user,
    )
    if done:
        token = done["client_token"]
        as_user = hvac.Client(url=args.addr, token=token, timeout=15)
        check("is_authenticated() is True with the token from sys/mfa/validate", as_user.is_authenticated, True)
        want_meta = {"username": user, "mfa": "true"} if args.target == "cofferd" else {"username": user}
        check(
            "auth.token.lookup_self() as that token: meta "
            + ("username and mfa true" if args.target == "cofferd" else "username (OpenBao sets no mfa key)"),
            lambda: as_user.auth.token.lookup_self()["data"]["meta"],
            want_meta,
        )
    c3, r3 = password_step()
    check_raises(
        "the same code again (new login, sys/mfa/validate) is refused: each TOTP step once",
        lambda: validate(c3, requirement(r3)[0], method_id, code),
        hx.VaultError,
    )
    print(f"# hvac: TOTP step used: {step}", flush=True)


def audit_devices(args):
    """sys/audit and sys/audit-hash through hvac's helpers (run.sh scenario F): file/ is
    enabled with file_path <audit dir>/audit.log; a second device file2/ is enabled,
    used and disabled here."""
    import os
    import re

    client = hvac.Client(url=args.addr, token=args.audit_token, timeout=15)
    main_log = os.path.join(args.audit_dir, "audit.log")
    second_log = os.path.join(args.audit_dir, "audit2.log")
    is_hmac = re.compile(r"hmac-sha256:[0-9a-f]{64}").fullmatch

    check(
        "sys.list_enabled_audit_devices()['data']['file/']: type file, path file/, options.file_path",
        lambda: (lambda d: (d["type"], d["path"], d["options"]["file_path"]))(
            client.sys.list_enabled_audit_devices()["data"]["file/"]
        ),
        ("file", "file/", main_log),
    )
    check(
        "sys.calculate_hash('file', input)['data']['hash'] is the HMAC bao's sys/audit-hash/file gave",
        lambda: client.sys.calculate_hash("file", args.audit_input)["data"]["hash"],
        args.audit_hash,
    )
    check_raises(
        "sys.calculate_hash('nosuch', input) raises InvalidRequest (OpenBao: 400 unknown audit backend)",
        lambda: client.sys.calculate_hash("nosuch", args.audit_input),
        hx.InvalidRequest,
    )
    check(
        "sys.enable_audit_device('file', path='file2', description=..., options={'file_path': ...}) -> 204",
        lambda: client.sys.enable_audit_device(
            "file", path="file2", description="second device", options={"file_path": second_log}
        ).status_code,
        204,
    )
    check(
        "sys.list_enabled_audit_devices()['data'] then has file/ and file2/ (description, options.file_path)",
        lambda: (lambda d: (sorted(k for k in d if k in ("file/", "file2/")), d["file2/"]["type"],
                            d["file2/"]["description"], d["file2/"]["options"]["file_path"]))(
            client.sys.list_enabled_audit_devices()["data"]
        ),
        (["file/", "file2/"], "file", "second device", second_log),
    )
    check_raises(
        "sys.enable_audit_device at file2 again raises InvalidRequest (path already in use)",
        lambda: client.sys.enable_audit_device("file", path="file2", options={"file_path": second_log}),
        hx.InvalidRequest,
    )
    check_raises(
        "sys.enable_audit_device('no-such-type', path='bogus') raises InvalidRequest",
        lambda: client.sys.enable_audit_device("no-such-type", path="bogus", options={}),
        hx.InvalidRequest,
    )
    second = check(
        "sys.calculate_hash('file2', input): hmac-sha256:<hex>, not file/'s (each device has its own salt)",
        lambda: client.sys.calculate_hash("file2", args.audit_input)["data"]["hash"],
        pred=lambda h: is_hmac(h) and h != args.audit_hash,
        want="hmac-sha256:<64 hex> different from " + str(args.audit_hash),
    )

    def second_log_entries():
        with open(second_log, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    check(
        "file2's log has request and response entries (it logs from the moment it is enabled)",
        lambda: sorted({e["type"] for e in second_log_entries()} & {"request", "response"}),
        ["request", "response"],
    )
    if second:
        check(
            "file2's log holds its own HMAC of the input (the calculate_hash request) and never the input itself",
            lambda: (lambda text: (second in text, args.audit_input in text))(open(second_log, encoding="utf-8").read()),
            (True, False),
        )
    check(
        "sys.disable_audit_device('file2') -> 204",
        lambda: client.sys.disable_audit_device("file2").status_code,
        204,
    )
    check(
        "sys.list_enabled_audit_devices()['data'] after that: file/ only",
        lambda: sorted(client.sys.list_enabled_audit_devices()["data"]),
        ["file/"],
    )
    check_raises(
        "sys.calculate_hash('file2', input) after disable raises InvalidRequest",
        lambda: client.sys.calculate_hash("file2", args.audit_input),
        hx.InvalidRequest,
    )
    check(
        "sys.calculate_hash('file', input) is unchanged (file/ keeps its salt)",
        lambda: client.sys.calculate_hash("file", args.audit_input)["data"]["hash"],
        args.audit_hash,
    )


def wait_active(anon, seconds=20):
    """A real OpenBao with raft storage needs a moment to become active after unseal."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            h = anon.sys.read_health_status(method="GET")
            if isinstance(h, dict) and not h.get("sealed") and not h.get("standby"):
                return
        except Exception:
            pass
        time.sleep(0.3)


if __name__ == "__main__":
    try:
        main()
    except Exception:
        fail("script crashed", traceback.format_exc().strip().replace("\n", " | "))
    if FAILED_NAMES_FILE:
        with open(FAILED_NAMES_FILE, "w") as f:
            f.writelines(n + "\n" for n in FAILED_NAMES)
    print(f"hvac totals: passed={PASSED} failed={FAILED}", flush=True)
    sys.exit(1 if FAILED else 0)
