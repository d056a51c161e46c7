# Tier: developer — engineers and pipelines.
# An allow-list: reads and writes their team's secrets, where the team comes
# from the metadata of the identity they logged in as (`team`), requests
# deploy credentials and may request (never approve) break-glass access.
# Versions are never destroyed from this tier: not through `destroy/`, not by
# deleting the metadata (which drops every version), not by lowering
# `max_versions` or setting `delete_version_after`. Soft delete and undelete
# stay, because they can be undone.

path "secret/data/teams/{{identity.entity.metadata.team}}/*" {
  capabilities = ["create", "read", "update", "patch", "delete"]
}

path "secret/subkeys/teams/{{identity.entity.metadata.team}}/*" {
  capabilities = ["read"]
}

# No "delete" here: deleting metadata destroys every version.
path "secret/metadata/teams/{{identity.entity.metadata.team}}/*" {
  capabilities = ["create", "read", "list", "update", "patch"]
  denied_parameters = {
    "max_versions"         = []
    "delete_version_after" = []
  }
}

path "secret/delete/teams/{{identity.entity.metadata.team}}/*" {
  capabilities = ["update"]
}

path "secret/undelete/teams/{{identity.entity.metadata.team}}/*" {
  capabilities = ["update"]
}

# Short-lived deploy credentials (engines still to come).
path "database/creds/deploy-*" {
  capabilities = ["read"]
}

path "identity/oidc/token/deploy-*" {
  capabilities = ["read", "update"]
}

# Break-glass: asking is allowed; approving never (a second person approves:
# this deny beats any policy that would make a developer an approver). The
# default policy opens the paths of one's own requests (show, fetch the
# token once, cancel, revoke, report).
path "sys/breakglass/request" {
  capabilities = ["create", "update"]
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
