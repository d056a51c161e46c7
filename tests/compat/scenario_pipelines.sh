# shellcheck shell=bash
# Scenario L: what a pipeline uses, with the real `bao` CLI and hvac (sourced by
# run.sh, which defines the helpers: rbao, http, expect_*, jget, start_dev,
# section). On a dev server of its own: AppRole (a role, its role id, a secret id
# with two uses that logs in twice and then no more, hvac's approle login), then
# dynamic PostgreSQL credentials on a throwaway database of the local PostgreSQL
# with their lease looked up, renewed and revoked through `bao lease` and hvac.
# Runs against OpenBao too (COMPAT_TARGET=openbao).

section "scenario L: AppRole, database credentials and leases on a fresh $TARGET dev server"
start_dev || die "scenario L dev server did not start"
ADDR="$SRV_ADDR"
TOKEN="$ROOT_TOKEN"

rbao auth enable approle
expect_cmd_ok "approle: auth enable approle"
rbao write auth/approle/role/ci token_policies=default token_ttl=10m secret_id_num_uses=2
expect_cmd_ok "approle: write a role with two-use secret ids"
rbao read -field=role_id auth/approle/role/ci/role-id
L_ROLE_ID="$OUT"
expect_cmd_ok "approle: read its role id"
rbao write -f -format=json auth/approle/role/ci/secret-id
L_SECRET_ID="$(jget 'd["data"]["secret_id"]')"
L_ACCESSOR="$(jget 'd["data"]["secret_id_accessor"]')"
expect_eq "approle: a new secret id has 2 uses" "$(jget 'd["data"]["secret_id_num_uses"]')" "2"
rbao list -format=json auth/approle/role/ci/secret-id
expect_eq "approle: LIST secret-id shows its accessor" "$(jget 'd')" "[\"$L_ACCESSOR\"]"
rbao write -format=json auth/approle/login role_id="$L_ROLE_ID" secret_id="$L_SECRET_ID"
expect_eq "approle: login gives a 10-minute token with the role's metadata" \
    "$(jget '[d["auth"]["lease_duration"], d["auth"]["metadata"]["role_name"]]')" '[600,"ci"]'
rbao write -format=json auth/approle/login role_id="$L_ROLE_ID" secret_id="$L_SECRET_ID"
expect_cmd_ok "approle: the second use logs in"
rbao write auth/approle/login role_id="$L_ROLE_ID" secret_id="$L_SECRET_ID"
expect_cmd_fails "approle: the third use is refused (exit 2)" 2 "Code: 400"
rbao write -f -field=secret_id auth/approle/role/ci/secret-id
L_HVAC_SECRET="$OUT"
set +e
L_HVAC_OUT="$(timeout -k 5 60 "$PY" - "$ADDR" "$L_ROLE_ID" "$L_HVAC_SECRET" 2>&1 <<'PYEOF'
import sys, hvac
addr, role_id, secret_id = sys.argv[1:4]
client = hvac.Client(url=addr)
out = client.auth.approle.login(role_id=role_id, secret_id=secret_id)
print("policies=" + ",".join(sorted(out["auth"]["token_policies"])))
print("authenticated=" + str(client.is_authenticated()))
PYEOF
)"
set -e
expect_contains "hvac: auth.approle.login logs in" "$L_HVAC_OUT" "authenticated=True"

# Dynamic database credentials need the local PostgreSQL (a database of their own).
L_DB="compat_$(date +%s)_$$"
L_PSQL=(psql -h 127.0.0.1 -U postgres -X -q -t -A)
if command -v psql >/dev/null && "${L_PSQL[@]}" -d test -c "CREATE DATABASE $L_DB" >/dev/null 2>&1; then
    rbao secrets enable database
    expect_cmd_ok "database: secrets enable database"
    rbao write database/config/app plugin_name=postgresql-database-plugin \
        connection_url="postgresql://{{username}}:{{password}}@127.0.0.1:5432/$L_DB?sslmode=disable" \
        username=postgres password=compat-root-password allowed_roles=deploy-app
    expect_cmd_ok "database: write a connection (verified)"
    rbao read -format=json database/config/app
    expect_not_contains "database: reading the connection never shows the root password" "$OUT" "compat-root-password"
    rbao write database/roles/deploy-app db_name=app default_ttl=1h max_ttl=2h \
        creation_statements="CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"
    expect_cmd_ok "database: write a role"
    rbao read -format=json database/creds/deploy-app
    L_LEASE="$(jget 'd["lease_id"]')"
    L_USER="$(jget 'd["data"]["username"]')"
    expect_eq "database: creds come with a renewable 1h lease" \
        "$(jget '[d["lease_id"].startswith("database/creds/deploy-app/"), d["lease_duration"], d["renewable"]]')" '[true,3600,true]'
    expect_eq "database: the role exists in PostgreSQL" \
        "$("${L_PSQL[@]}" -d "$L_DB" -c "SELECT count(*) FROM pg_roles WHERE rolname = '$L_USER'")" "1"
    rbao lease lookup -format=json "$L_LEASE"
    expect_eq "bao lease lookup: id and renewable" "$(jget '[d["data"]["id"], d["data"]["renewable"]]')" "[\"$L_LEASE\",true]"
    rbao lease renew -increment=10m -format=json "$L_LEASE"
    expect_eq "bao lease renew -increment=10m: 600 s" "$(jget 'd["lease_duration"]')" "600"
    rbao lease revoke "$L_LEASE"
    expect_cmd_ok "bao lease revoke"
    L_GONE=1
    for _ in $(seq 1 50); do
        L_GONE="$("${L_PSQL[@]}" -d "$L_DB" -c "SELECT count(*) FROM pg_roles WHERE rolname = '$L_USER'")"
        [ "$L_GONE" = 0 ] && break
        sleep 0.2
    done
    expect_eq "database: revoking the lease dropped the role" "$L_GONE" "0"
    set +e
    L_HVAC_DB="$(timeout -k 5 60 "$PY" - "$ADDR" "$ROOT_TOKEN" 2>&1 <<'PYEOF'
import sys, hvac
addr, token = sys.argv[1:3]
client = hvac.Client(url=addr, token=token)
creds = client.secrets.database.generate_credentials("deploy-app")
lease = creds["lease_id"]
print("user=" + creds["data"]["username"])
print("lookup=" + str(client.sys.read_lease(lease)["data"]["id"] == lease))
print("renew=" + str(client.sys.renew_lease(lease, increment=300)["lease_duration"]))
client.sys.revoke_lease(lease)
print("revoked")
PYEOF
)"
    set -e
    expect_contains "hvac: database generate_credentials, read_lease, renew_lease, revoke_lease" \
        "$L_HVAC_DB" "$(printf 'lookup=True\nrenew=300\nrevoked')"
    stop_server "$SRV_PID"
    "${L_PSQL[@]}" -d test -c "DROP DATABASE IF EXISTS $L_DB WITH (FORCE)" >/dev/null 2>&1 || true
else
    [ "${REQUIRE_POSTGRES:-0}" = 1 ] && die "REQUIRE_POSTGRES=1 but no database could be created on 127.0.0.1:5432"
    echo "# skipping the database checks: no PostgreSQL on 127.0.0.1:5432 (set REQUIRE_POSTGRES=1 to fail instead)"
    stop_server "$SRV_PID"
fi
