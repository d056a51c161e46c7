#!/usr/bin/env bash
# coffer-deploy.sh COMMAND [ARGS...] — inside a GitHub Actions job with
# `permissions: id-token: write`: trades the job's OIDC token for a 15-minute
# Coffer token, fetches a database login and a deploy JWT, runs COMMAND with
# them in its environment (DB_USERNAME, DB_PASSWORD, DEPLOY_JWT), then revokes
# the token, which takes the database login with it. Every value is masked in
# the job log; nothing is written to disk.
#
# Settings: COFFER_ADDR (required), COFFER_ROLE (deploy-app-prod),
# COFFER_AUDIENCE (https://coffer.example.com), COFFER_CACERT (a CA file).
set -euo pipefail

: "${COFFER_ADDR:?set COFFER_ADDR to the Coffer server, e.g. https://coffer.example.com:8200}"
: "${COFFER_ROLE:=deploy-app-prod}"
: "${COFFER_AUDIENCE:=https://coffer.example.com}"
: "${ACTIONS_ID_TOKEN_REQUEST_URL:?no OIDC token: the job needs permissions: id-token: write}"
: "${ACTIONS_ID_TOKEN_REQUEST_TOKEN:?no OIDC token: the job needs permissions: id-token: write}"
[ "$#" -gt 0 ] || { echo "usage: coffer-deploy.sh COMMAND [ARGS...]" >&2; exit 64; }

mask() { echo "::add-mask::$1"; }
# coffer METHOD PATH [JSON] — the Vault HTTP API; errors go to stderr with the server's message.
coffer() {
    local args=(-sS --fail-with-body -X "$1" "$COFFER_ADDR/v1/$2")
    [ -n "${COFFER_CACERT:-}" ] && args+=(--cacert "$COFFER_CACERT")
    [ -n "${TOKEN:-}" ] && args+=(-H "X-Vault-Token: $TOKEN")
    [ -n "${3:-}" ] && args+=(-H "Content-Type: application/json" --data-binary "$3")
    curl "${args[@]}"
}

jwt="$(curl -sS --fail-with-body -H "Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN" \
    "$ACTIONS_ID_TOKEN_REQUEST_URL&audience=$COFFER_AUDIENCE" | jq -r .value)"
mask "$jwt"
login="$(TOKEN='' coffer POST auth/jwt/login "$(jq -n --arg role "$COFFER_ROLE" --arg jwt "$jwt" '{role: $role, jwt: $jwt}')")" || {
    echo "coffer-deploy: login refused: $login" >&2
    exit 1
}
TOKEN="$(jq -r .auth.client_token <<<"$login")"
mask "$TOKEN"
# Whatever happens next, the token (and every lease it made) ends with the job.
trap 'coffer POST auth/token/revoke-self >/dev/null || echo "coffer-deploy: could not revoke the token; it expires in 15 minutes" >&2' EXIT
echo "coffer-deploy: logged in as $(jq -r .auth.metadata.repository <<<"$login")@$(jq -r .auth.metadata.ref <<<"$login") with $(jq -r '.auth.policies | join(",")' <<<"$login") for $(jq -r .auth.lease_duration <<<"$login")s"

creds="$(coffer GET database/creds/deploy-app)"
DB_USERNAME="$(jq -r .data.username <<<"$creds")"
DB_PASSWORD="$(jq -r .data.password <<<"$creds")"
mask "$DB_PASSWORD"
DEPLOY_JWT="$(coffer GET identity/oidc/token/deploy-app | jq -r .data.token)"
mask "$DEPLOY_JWT"
echo "coffer-deploy: database login $DB_USERNAME for $(jq -r .lease_duration <<<"$creds")s, deploy JWT issued"

export DB_USERNAME DB_PASSWORD DEPLOY_JWT
"$@"
