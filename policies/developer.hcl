# Tier: developer — engineers and pipelines.
# Reads and writes their team's secrets, where the team comes from the metadata
# of the identity they logged in as (`team`), requests deploy credentials and
# may request (never approve) break-glass access.

path "secret/data/teams/{{identity.entity.metadata.team}}/*" {
  capabilities = ["create", "read", "update", "patch", "delete"]
}

path "secret/subkeys/teams/{{identity.entity.metadata.team}}/*" {
  capabilities = ["read"]
}

path "secret/metadata/teams/{{identity.entity.metadata.team}}/*" {
  capabilities = ["read", "list", "update", "patch", "delete"]
}

path "secret/delete/teams/{{identity.entity.metadata.team}}/*" {
  capabilities = ["update"]
}

path "secret/undelete/teams/{{identity.entity.metadata.team}}/*" {
  capabilities = ["update"]
}

# Destroying versions for good is left to the team's owners (no "destroy/" here).

# Short-lived deploy credentials.
path "database/creds/deploy-*" {
  capabilities = ["read"]
}

path "identity/oidc/token/deploy-*" {
  capabilities = ["read", "update"]
}

# Break-glass: asking is allowed, approving never (a second person approves).
path "sys/breakglass/request" {
  capabilities = ["create", "update"]
}

path "sys/breakglass/request/*" {
  capabilities = ["read"]
}

path "sys/breakglass/approve*" {
  capabilities = ["deny"]
}

# Tokens for their own tools, limited to a subset of their own policies.
path "auth/token/create" {
  capabilities = ["create", "update"]
}

path "sys/internal/ui/mounts/*" {
  capabilities = ["read"]
}
