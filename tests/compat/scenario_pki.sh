# shellcheck shell=bash
# Scenario P: the PKI engine with the real `bao` CLI (sourced by run.sh, which
# defines the helpers: rbao, http, expect_*, jget, start_dev, section).
# On a dev server of its own: enable pki, generate a root, write a role for
# *.svc.internal with a SPIFFE URI SAN, issue an allowed name, see a refused
# one fail, revoke, and find the serial on the CRL (DER, parsed by openssl)
# that is read without a token; then the same through hvac. Runs against
# OpenBao too (COMPAT_TARGET=openbao).

section "scenario P: PKI engine on a fresh $TARGET dev server, bao CLI"
# A dev server of its own, with log files of its own (start_dev's are scenario A's).
if [ "$TARGET" = cofferd ]; then
    start_cofferd pki-dev --dev --dev-listen-address 127.0.0.1:0 --dev-root-token-id "$ROOT_TOKEN" ||
        die "scenario P dev server did not start"
else
    P_PORT="$(free_port)"
    "$BAO" server -dev -dev-root-token-id="$ROOT_TOKEN" -dev-listen-address="127.0.0.1:$P_PORT" \
        >"$WORK/pki-dev.out" 2>"$WORK/pki-dev.err" &
    SRV_PID=$!
    PIDS+=("$SRV_PID")
    SRV_ADDR="http://127.0.0.1:$P_PORT"
    { wait_http_ready "$SRV_ADDR" "$WORK/pki-dev" && wait_active "$SRV_ADDR"; } ||
        die "scenario P dev server did not start"
fi
ADDR="$SRV_ADDR"
TOKEN="$ROOT_TOKEN"

rbao secrets enable pki
expect_cmd_ok "pki: secrets enable pki"
rbao secrets list -format=json
expect_eq "pki: the mount's type is pki" "$(jget 'd["pki/"]["type"]')" "pki"

http GET pki/ca/pem "" ""
expect_http "pki: ca/pem before a root is 204 (no token)" 204

rbao write -format=json pki/root/generate/internal common_name="Compat Root" key_type=ec ttl=720h
expect_cmd_ok "pki: write pki/root/generate/internal"
P_ROOT_PEM="$(jget 'd["data"]["certificate"]')"
expect_contains "pki: the root certificate is PEM" "$P_ROOT_PEM" "BEGIN CERTIFICATE"
expect_eq "pki: an internal root returns no private key" "$(jget '"private_key" in d["data"]')" "false"

rbao write pki/roles/svc allowed_domains=svc.internal allow_subdomains=true \
    allowed_uri_sans='spiffe://prod/ns/*/sa/*' key_type=ec max_ttl=72h
expect_cmd_ok "pki: write pki/roles/svc"
rbao read -format=json pki/roles/svc
expect_eq "pki: the role reads back (domains, URI SANs, key type, max_ttl)" \
    "$(jget '[d["data"]["allowed_domains"], d["data"]["allowed_uri_sans"], d["data"]["key_type"], d["data"]["max_ttl"]]')" \
    '[["svc.internal"],["spiffe://prod/ns/*/sa/*"],"ec",259200]'
rbao list -format=json pki/roles
expect_eq "pki: list pki/roles" "$(jget 'd')" '["svc"]'

rbao write -format=json pki/issue/svc common_name=api.svc.internal \
    uri_sans=spiffe://prod/ns/payments/sa/api ttl=1h
expect_cmd_ok "pki: issue an allowed name"
P_SERIAL="$(jget 'd["data"]["serial_number"]')"
P_CERT="$(jget 'd["data"]["certificate"]')"
P_KEY="$(jget 'd["data"]["private_key"]')"
expect_eq "pki: issue answers an EC key, the CA, a chain of one" \
    "$(jget '[d["data"]["private_key_type"], d["data"]["issuing_ca"] == d["data"]["ca_chain"][0], len(d["data"]["ca_chain"])]')" \
    '["ec",true,1]'
P_TEXT="$(printf '%s\n' "$P_CERT" | openssl x509 -noout -text 2>&1 || true)"
expect_contains "pki: the certificate has the DNS SAN" "$P_TEXT" "DNS:api.svc.internal"
expect_contains "pki: the certificate has the SPIFFE URI SAN" "$P_TEXT" "URI:spiffe://prod/ns/payments/sa/api"
expect_contains "pki: the certificate is for TLS servers and clients" "$P_TEXT" "TLS Web Server Authentication, TLS Web Client Authentication"
printf '%s\n' "$P_ROOT_PEM" >"$WORK/pki-root.pem"
printf '%s\n' "$P_CERT" >"$WORK/pki-leaf.pem"
run openssl verify -CAfile "$WORK/pki-root.pem" "$WORK/pki-leaf.pem"
expect_cmd_ok "pki: openssl verifies the certificate under the root" "OK"
printf '%s\n' "$P_KEY" >"$WORK/pki-leaf.key"
expect_contains "pki: the EC key is in SEC1 form, as Vault answers it" "$(head -n 1 "$WORK/pki-leaf.key")" "BEGIN EC PRIVATE KEY"
run openssl ec -in "$WORK/pki-leaf.key" -check -noout
expect_cmd_ok "pki: openssl reads and checks the EC key"
expect_eq "pki: the key is the certificate's" \
    "$(openssl pkey -in "$WORK/pki-leaf.key" -pubout 2>&1)" "$(openssl x509 -in "$WORK/pki-leaf.pem" -noout -pubkey 2>&1)"

rbao write pki/issue/svc common_name=api.evil.com
expect_cmd_fails "pki: a name outside the role is refused (400) and named" 2 "api.evil.com"
rbao write pki/issue/svc common_name=a.svc.internal uri_sans=spiffe://dev/ns/a/sa/b
expect_cmd_fails "pki: a URI SAN outside the role's globs is refused (400)" 2 "Code: 400"

rbao write -format=json pki/revoke serial_number="$P_SERIAL"
expect_cmd_ok "pki: revoke the certificate"
expect_eq "pki: revoke answers a revocation time" "$(jget 'd["data"]["revocation_time"] > 0')" "true"

P_CODE="$(curl -s --max-time "$CMD_TIMEOUT" -o "$WORK/pki-crl.der" -w '%{http_code}' "$ADDR/v1/pki/crl" || true)"
expect_eq "pki: crl (DER) is read without a token" "$P_CODE" 200
P_CRL="$(openssl crl -inform DER -in "$WORK/pki-crl.der" -noout -text 2>&1 || true)"
P_HEX="$(printf '%s' "$P_SERIAL" | tr -d ':' | tr 'a-f' 'A-F')"
expect_contains "pki: the revoked serial is on the CRL" "$P_CRL" "$P_HEX"
run openssl crl -inform DER -in "$WORK/pki-crl.der" -CAfile "$WORK/pki-root.pem" -noout
expect_rc "pki: openssl verifies the CRL's signature" 0
rbao read -format=json pki/cert/crl
expect_contains "pki: read pki/cert/crl (PEM)" "$(jget 'd["data"]["certificate"]')" "BEGIN X509 CRL"
rbao read -format=json pki/cert/"$P_SERIAL"
expect_eq "pki: cert/<serial> shows the revocation" "$(jget 'd["data"]["revocation_time"] > 0')" "true"

http GET pki/ca/pem "" ""
expect_http "pki: ca/pem is read without a token" 200
expect_eq "pki: ca/pem is the root" "$HBODY" "$P_ROOT_PEM"
http LIST pki/certs "" ""
expect_http "pki: certs is not listed without a token" 403
rbao list -format=json pki/certs
expect_contains "pki: list pki/certs has the serial" "$(jget 'd')" "$P_SERIAL"
rbao read -format=json pki/crl/rotate
expect_eq "pki: read pki/crl/rotate" "$(jget 'd["data"]["success"]')" "true"
rbao write pki/tidy tidy_cert_store=true tidy_revoked_certs=true
expect_cmd_ok "pki: write pki/tidy"

# hvac, on a mount of its own: the calls a Python service makes.
rbao secrets enable -path=pki-hvac pki
expect_cmd_ok "hvac: (setup) secrets enable -path=pki-hvac pki"
cat >"$WORK/pki_hvac.py" <<'PYEOF'
import json, sys
import hvac
c = hvac.Client(url=sys.argv[1], token=sys.argv[2])
pki, m = c.secrets.pki, "pki-hvac"
out = {}
root = pki.generate_root(type="internal", common_name="hvac root", extra_params={"key_type": "ec"}, mount_point=m)
out["root"] = root["data"]["certificate"].startswith("-----BEGIN CERTIFICATE-----")
pki.create_or_update_role("svc", extra_params={"allowed_domains": "svc.internal", "allow_subdomains": True, "key_type": "ec"}, mount_point=m)
out["role"] = pki.read_role("svc", mount_point=m)["data"]["allowed_domains"]
issued = pki.generate_certificate("svc", "api.svc.internal", extra_params={"ttl": "1h"}, mount_point=m)
serial = issued["data"]["serial_number"]
out["issued"] = [issued["data"]["private_key_type"], issued["lease_duration"]]
try:
    pki.generate_certificate("svc", "api.evil.com", mount_point=m)
    out["refused"] = "not refused"
except hvac.exceptions.InvalidRequest as e:
    out["refused"] = "api.evil.com" in str(e)
out["revoked"] = pki.revoke_certificate(serial, mount_point=m)["data"]["revocation_time"] > 0
out["ca_pem"] = pki.read_ca_certificate(mount_point=m) == root["data"]["certificate"]
out["crl_pem"] = "BEGIN X509 CRL" in pki.read_crl(mount_point=m)
out["listed"] = serial in pki.list_certificates(mount_point=m)["data"]["keys"]
print(json.dumps(out, sort_keys=True))
PYEOF
run "$PY" "$WORK/pki_hvac.py" "$ADDR" "$TOKEN"
# cofferd leases every stored certificate (revoking the lease revokes it);
# OpenBao only with the role's generate_lease.
P_LEASE=3600
[ "$TARGET" = openbao ] && P_LEASE=0
expect_eq "hvac: pki root, role, issue, refusal, revoke, ca/pem, crl/pem, certs" "$OUT" \
    '{"ca_pem": true, "crl_pem": true, "issued": ["ec", '"$P_LEASE"'], "listed": true, "refused": true, "revoked": true, "role": ["svc.internal"], "root": true}'
stop_server "$SRV_PID"
