#!/usr/bin/env bash
# One-time setup for deploy.yml, run by an operator with the `bao` (or `vault`)
# CLI and an admin token (BAO_ADDR, BAO_TOKEN). Afterwards the workflow needs no
# stored secret: GitHub's OIDC token of one job, on main, in the `prod`
# environment of org/app, logs in for 15 minutes and gets only what a deploy
# needs (a database login that dies with the token, and a signed deploy JWT).
#
#   GITHUB_REPO=org/app GITHUB_ENVIRONMENT=prod \
#   DB_CONNECTION_URL='postgresql://{{username}}:{{password}}@db.internal:5432/app' \
#   DB_ADMIN_USER=coffer_admin DB_ADMIN_PASSWORD=... ./setup.sh
#
# Re-running it rewrites the same configuration.
set -euo pipefail

: "${GITHUB_REPO:=org/app}"
: "${GITHUB_BRANCH:=main}"
: "${GITHUB_ENVIRONMENT:=prod}"
: "${COFFER_AUDIENCE:=https://coffer.example.com}"
: "${OIDC_DISCOVERY_URL:=https://token.actions.githubusercontent.com}"
: "${DB_CONNECTION_URL:?the database URL with {{username}} and {{password}}}"
: "${DB_ADMIN_USER:?the database user Coffer creates logins with}"
: "${DB_ADMIN_PASSWORD:?its password (Coffer keeps it behind its barrier)}"
BAO="${BAO:-bao}"

enabled() { "$BAO" "$1" list -format=json | jq -e --arg p "$2/" 'has($p)' >/dev/null; }

# Who may log in: GitHub's jobs, checked against GitHub's published keys.
enabled auth jwt || "$BAO" auth enable jwt
"$BAO" write auth/jwt/config oidc_discovery_url="$OIDC_DISCOVERY_URL" bound_issuer="$OIDC_DISCOVERY_URL"

# What a deploy may do, and nothing else.
"$BAO" policy write deploy-app - <<'POLICY'
path "database/creds/deploy-app" {
  capabilities = ["read"]
}
path "identity/oidc/token/deploy-app" {
  capabilities = ["read"]
}
POLICY

# Only main of org/app, only in the prod environment (GitHub's `sub` for such a
# job is repo:org/app:environment:prod; the claims say the rest), for 15 minutes.
jq -n --arg aud "$COFFER_AUDIENCE" --arg repo "$GITHUB_REPO" \
    --arg ref "refs/heads/$GITHUB_BRANCH" --arg env "$GITHUB_ENVIRONMENT" '{
    role_type: "jwt",
    user_claim: "sub",
    bound_audiences: [$aud],
    bound_subject: ("repo:" + $repo + ":environment:" + $env),
    bound_claims: {repository: $repo, ref: $ref, environment: $env},
    claim_mappings: {repository: "repository", ref: "ref", sha: "sha", actor: "actor", run_id: "run_id"},
    token_policies: ["deploy-app"],
    token_ttl: "15m",
    token_max_ttl: "15m"
}' | "$BAO" write auth/jwt/role/deploy-app-prod -

# The database login a deploy gets: created on request, dropped with its lease.
enabled secrets database || "$BAO" secrets enable database
"$BAO" write database/config/app plugin_name=postgresql-database-plugin \
    connection_url="$DB_CONNECTION_URL" username="$DB_ADMIN_USER" password="$DB_ADMIN_PASSWORD" \
    allowed_roles=deploy-app
"$BAO" write database/roles/deploy-app db_name=app default_ttl=15m max_ttl=15m \
    creation_statements="CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; GRANT SELECT ON ALL TABLES IN SCHEMA public TO \"{{name}}\";"

# The deploy JWT the target verifies against Coffer's published keys
# (identity/oidc/.well-known/keys), naming the commit and who pushed it.
"$BAO" write identity/oidc/key/deploy algorithm=ES256 rotation_period=24h \
    verification_ttl=48h allowed_client_ids=deploy-target
"$BAO" write identity/oidc/role/deploy-app key=deploy client_id=deploy-target ttl=15m \
    template='{"repository": "{{identity.token.metadata.repository}}", "ref": "{{identity.token.metadata.ref}}", "sha": "{{identity.token.metadata.sha}}", "actor": "{{identity.token.metadata.actor}}"}'

echo "setup.sh: role deploy-app-prod accepts $GITHUB_REPO on $GITHUB_BRANCH in $GITHUB_ENVIRONMENT"
