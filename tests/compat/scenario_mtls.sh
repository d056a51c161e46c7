# shellcheck shell=bash
# Scenario M (sourced by run.sh): services log in with their TLS
# client certificate. A cofferd with two TLS listeners — "people" (client_auth =
# "request", no CA file) and "services" (client_auth = "require" with the CA) —
# certificates made here with openssl (or, without openssl, Python's
# `cryptography` installed into the compat venv from PyPI), then:
#   - the real `bao login -method=cert -client-cert=... -client-key=...`, then
#     `bao kv get` with the token and the same certificate;
#   - the token is certificate-bound: refused over a connection without the
#     certificate, or with another one; `bao token lookup` shows the binding;
#   - a service listener refuses a client without a certificate at the handshake;
#   - hvac with cert=(crt, key): auth.cert.login, then a KV v2 read.
# Uses run.sh's helpers (run, ok, bad, expect_*, jget, section, stop_server, $BAO, $PY).

mtls_make_certs() {
    local d="$1"
    if command -v openssl >/dev/null 2>&1; then
        local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
        openssl req -x509 "${ec[@]}" -keyout "$d/ca-key.pem" -out "$d/ca.pem" -days 2 \
            -subj "/CN=coffer compat CA" -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
        mtls_leaf() { # NAME SUBJECT EXTENSIONS
            openssl req "${ec[@]}" -keyout "$d/$1-key.pem" -out "$d/$1.csr" -subj "$2" 2>/dev/null
            printf '%b' "$3" >"$d/$1.ext"
            openssl x509 -req -in "$d/$1.csr" -CA "$d/ca.pem" -CAkey "$d/ca-key.pem" \
                -CAcreateserial -out "$d/$1.pem" -days 2 -extfile "$d/$1.ext" 2>/dev/null
        }
        mtls_leaf server "/CN=localhost" "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
        mtls_leaf api "/CN=api" "subjectAltName=URI:spiffe://prod/ns/payments/sa/api,DNS:api.payments.svc.internal\nextendedKeyUsage=clientAuth\n"
        mtls_leaf other "/CN=api" "subjectAltName=URI:spiffe://prod/ns/payments/sa/api\nextendedKeyUsage=clientAuth\n"
        MTLS_API_SHA256="$(openssl x509 -in "$d/api.pem" -outform der | sha256sum | cut -d' ' -f1)"
    else
        "$VENV/bin/pip" install -q cryptography >/dev/null 2>&1 || return 1
        MTLS_API_SHA256="$("$PY" - "$d" <<'PYEOF'
import datetime, hashlib, ipaddress, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ExtendedKeyUsageOID
d = sys.argv[1]
now = datetime.datetime.now(datetime.timezone.utc)
def name(cn): return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
def write(stem, cert, key):
    open(f"{d}/{stem}.pem", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
    open(f"{d}/{stem}-key.pem", "wb").write(key.private_bytes(serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
ca_key = ec.generate_private_key(ec.SECP256R1())
ca = (x509.CertificateBuilder().subject_name(name("coffer compat CA")).issuer_name(name("coffer compat CA"))
      .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
      .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
      .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
      .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
      .sign(ca_key, hashes.SHA256()))
write("ca", ca, ca_key)
def leaf(stem, cn, sans, eku):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    write(stem, cert, key)
    return cert
leaf("server", "localhost", [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
     ExtendedKeyUsageOID.SERVER_AUTH)
api = leaf("api", "api", [x509.UniformResourceIdentifier("spiffe://prod/ns/payments/sa/api"),
     x509.DNSName("api.payments.svc.internal")], ExtendedKeyUsageOID.CLIENT_AUTH)
leaf("other", "api", [x509.UniformResourceIdentifier("spiffe://prod/ns/payments/sa/api")],
     ExtendedKeyUsageOID.CLIENT_AUTH)
print(hashlib.sha256(api.public_bytes(serialization.Encoding.DER)).hexdigest())
PYEOF
)" || return 1
    fi
}

# tbao URL [CERT] ARGS... — the CLI against URL, trusting the compat CA, with $TOKEN,
# presenting the client certificate CERT (a name under $MD, or "-" for none).
tbao() {
    local url="$1" cert="$2"
    shift 2
    local extra=()
    [ "$cert" != "-" ] && extra=(BAO_CLIENT_CERT="$MD/$cert.pem" BAO_CLIENT_KEY="$MD/$cert-key.pem")
    run env HOME="$WORK/home" BAO_ADDR="$url" BAO_CACERT="$MD/ca.pem" BAO_TOKEN="$TOKEN" "${extra[@]}" "$BAO" "$@"
}

mtls_scenario() {
    MD="$WORK/mtls"
    mkdir -p "$MD"
    if ! mtls_make_certs "$MD"; then
        bad "mtls: test certificates made" "neither openssl nor Python's cryptography (from PyPI) is available"
        return 0
    fi
    local pid people="" services=""
    if [ "$TARGET" = cofferd ]; then
        cat >"$MD/coffer.toml" <<EOF
[storage]
url = "sqlite://$MD/coffer.db"

[[listener]]
address = "127.0.0.1:0"
tls_cert_file = "$MD/server.pem"
tls_key_file = "$MD/server-key.pem"
client_auth = "request"

[[listener]]
address = "127.0.0.1:0"
tls_cert_file = "$MD/server.pem"
tls_key_file = "$MD/server-key.pem"
client_auth = "require"
tls_client_ca_file = "$MD/ca.pem"
EOF
        "$COFFERD_BIN" --config "$MD/coffer.toml" >"$WORK/mtls.out" 2>"$WORK/mtls.err" &
        pid=$!
        PIDS+=("$pid")
        local lines
        for _ in $(seq 1 150); do
            lines="$(grep '^==> cofferd listening on ' "$WORK/mtls.out" 2>/dev/null || true)"
            if [ "$(printf '%s\n' "$lines" | grep -c listening)" -ge 2 ]; then
                people="$(printf '%s\n' "$lines" | sed -n 1p | sed 's/^==> cofferd listening on //')"
                services="$(printf '%s\n' "$lines" | sed -n 2p | sed 's/^==> cofferd listening on //')"
                break
            fi
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
    else
        # The reference: OpenBao's listener requests client certificates by
        # default; the second one requires and verifies them.
        local p1 p2 c1
        p1="$(free_port)" p2="$(free_port)" c1="$(free_port)"
        mkdir -p "$MD/raft"
        cat >"$MD/bao.hcl" <<EOF
storage "raft" {
  path    = "$MD/raft"
  node_id = "mtls"
}
listener "tcp" {
  address         = "127.0.0.1:$p1"
  cluster_address = "127.0.0.1:$c1"
  tls_cert_file   = "$MD/server.pem"
  tls_key_file    = "$MD/server-key.pem"
}
listener "tcp" {
  address                            = "127.0.0.1:$p2"
  tls_cert_file                      = "$MD/server.pem"
  tls_key_file                       = "$MD/server-key.pem"
  tls_client_ca_file                 = "$MD/ca.pem"
  tls_require_and_verify_client_cert = true
}
api_addr     = "https://127.0.0.1:$p1"
cluster_addr = "https://127.0.0.1:$c1"
EOF
        "$BAO" server -config="$MD/bao.hcl" >"$WORK/mtls.out" 2>"$WORK/mtls.err" &
        pid=$!
        PIDS+=("$pid")
        for _ in $(seq 1 100); do
            if curl -s -o /dev/null --max-time 2 --cacert "$MD/ca.pem" "https://127.0.0.1:$p1/v1/sys/seal-status"; then
                people="https://127.0.0.1:$p1" services="https://127.0.0.1:$p2"
                break
            fi
            sleep 0.2
        done
    fi
    if [ -z "$services" ]; then
        bad "mtls: $TARGET with a request and a require listener starts" "$(tail -n 3 "$WORK/mtls.err" | tr '\n' ' ')"
        return 0
    fi
    echo "# scenario M: people $people, services $services (pid $pid)"
    local save_token="$TOKEN"
    TOKEN=""
    tbao "$people" - operator init -key-shares=1 -key-threshold=1 -format=json
    expect_rc "mtls: bao operator init over TLS" 0
    local key root
    key="$(jget 'd["unseal_keys_b64"][0]')"
    root="$(jget 'd["root_token"]')"
    tbao "$people" - operator unseal "$key"
    TOKEN="$root"
    tbao "$people" - secrets enable -path=secret kv-v2
    tbao "$people" - kv put secret/app password=expected
    expect_rc "mtls: root writes secret/app over the people listener" 0
    printf 'path "secret/data/app" { capabilities = ["read"] }\n' >"$MD/app.hcl"
    tbao "$people" - policy write app-read "$MD/app.hcl"
    tbao "$people" - auth enable cert
    expect_rc "mtls: bao auth enable cert" 0
    tbao "$people" - write auth/cert/certs/payments certificate=@"$MD/ca.pem" \
        allowed_uri_sans="spiffe://prod/ns/payments/sa/*" token_policies=app-read token_ttl=10m
    expect_rc "mtls: bao write auth/cert/certs/payments (CA, SPIFFE glob)" 0

    # The real CLI logs in with its certificate, then reads with the token.
    TOKEN=""
    tbao "$services" - login -method=cert -client-cert="$MD/api.pem" -client-key="$MD/api-key.pem" -format=json
    expect_rc "mtls: bao login -method=cert -client-cert -client-key" 0
    local tok
    tok="$(jget 'd["auth"]["client_token"]')"
    expect_eq "mtls: the cert login's policies" "$(jget 'd["auth"]["policies"]')" '["app-read","default"]'
    TOKEN="$tok"
    tbao "$services" api kv get -format=json secret/app
    expect_eq "mtls: bao kv get with the cert token and its certificate" "$(jget 'd["data"]["data"]["password"]')" "expected"
    if [ "$TARGET" = cofferd ]; then
        tbao "$people" api token lookup -format=json
        expect_eq "mtls: bao token lookup shows the certificate binding (bound_cert_sha256)" \
            "$(jget 'd["data"]["bound_cert_sha256"]')" "$MTLS_API_SHA256"
        # Stolen token: without the certificate, or with another one.
        tbao "$people" - kv get secret/app
        expect_cmd_fails "mtls: the bound token is refused without its certificate (403)" 2 "bound to a client certificate"
        tbao "$people" other kv get secret/app
        expect_cmd_fails "mtls: the bound token is refused with another certificate" 2 "bound to a client certificate"
    fi
    tbao "$services" - kv get secret/app
    if [ "$RC" != 0 ]; then ok "mtls: the services listener refuses a client without a certificate"; else bad "mtls: the services listener refuses a client without a certificate" "it answered"; fi

    # Refused login: a certificate outside the role's SAN glob is named as such.
    TOKEN="$root"
    tbao "$people" - write auth/cert/certs/payments certificate=@"$MD/ca.pem" \
        allowed_uri_sans="spiffe://prod/ns/billing/*" token_policies=app-read
    TOKEN=""
    tbao "$services" - login -method=cert -client-cert="$MD/api.pem" -client-key="$MD/api-key.pem"
    # (OpenBao's sentence names no check: "no chain matching all constraints".)
    expect_cmd_fails "mtls: a SAN outside the role is refused, saying which check failed" 2 \
        "$([ "$TARGET" = cofferd ] && echo "URI SANs" || echo "no chain matching all constraints")"
    TOKEN="$root"
    tbao "$people" - write auth/cert/certs/payments certificate=@"$MD/ca.pem" \
        allowed_uri_sans="spiffe://prod/ns/payments/sa/*" token_policies=app-read

    # hvac with cert=(crt, key).
    run "$PY" - "$services" "$people" "$MD" <<'PYEOF'
import sys, hvac
services, people, d = sys.argv[1:4]
crt, key, ca = f"{d}/api.pem", f"{d}/api-key.pem", f"{d}/ca.pem"
c = hvac.Client(url=services, cert=(crt, key), verify=ca)
login = c.auth.cert.login(cert_pem=crt, key_pem=key)
token = login["auth"]["client_token"]
secret = c.secrets.kv.v2.read_secret_version(path="app", mount_point="secret", raise_on_deleted_version=True)
print("read:", secret["data"]["data"]["password"])
try:
    hvac.Client(url=people, token=token, verify=ca).secrets.kv.v2.read_secret_version(
        path="app", mount_point="secret", raise_on_deleted_version=True)
    print("stolen: allowed")
except hvac.exceptions.Forbidden as e:
    print("stolen: forbidden", "bound to a client certificate" in str(e))
PYEOF
    expect_contains "hvac: cert=(crt, key) login, then a KV v2 read" "$OUT" "read: expected"
    if [ "$TARGET" = cofferd ]; then
        expect_contains "hvac: the cert token is Forbidden without the certificate" "$OUT" "stolen: forbidden True"
    fi
    [ "$RC" = 0 ] || echo "# hvac stderr: $(errline)"
    TOKEN="$save_token"
    stop_server "$pid"
}

section "scenario M: mTLS listeners, auth/cert, certificate-bound tokens (bao, hvac)"
[ "$TARGET" = cofferd ] || echo "# against OpenBao: the certificate-binding checks are cofferd-only and skipped"
mtls_scenario
