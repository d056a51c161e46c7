# Tier: emergency-admin — nobody holds it standing; it is only handed out through
# an approved, time-boxed break-glass grant.
# Everything, except: changing audit devices, the seal and the root key, its own
# grant, and anything that would let it raise its privileges beyond this policy
# (writing policies, enabling auth methods, creating tokens outside its policies).

path "*" {
  capabilities = ["create", "read", "update", "patch", "delete", "list", "sudo"]
}

# Audit: may look, may not change.
path "sys/audit" {
  capabilities = ["read", "sudo"]
}

path "sys/audit/*" {
  capabilities = ["deny"]
}

# Seal and key material.
path "sys/seal" {
  capabilities = ["deny"]
}

path "sys/unseal" {
  capabilities = ["deny"]
}

path "sys/rotate" {
  capabilities = ["deny"]
}

path "sys/rekey/*" {
  capabilities = ["deny"]
}

path "sys/generate-root/*" {
  capabilities = ["deny"]
}

path "sys/raw/*" {
  capabilities = ["deny"]
}

# Its own grant and every other break-glass decision.
path "sys/breakglass/*" {
  capabilities = ["deny"]
}

# No privilege escalation: policies are read-only, auth methods cannot be added,
# and child tokens stay within this policy (no sudo on token creation).
path "sys/policies/acl/*" {
  capabilities = ["read", "list"]
}

path "sys/policy/*" {
  capabilities = ["read"]
}

path "sys/auth/*" {
  capabilities = ["read"]
}

path "auth/token/create" {
  capabilities = ["create", "update"]
}

path "auth/token/create-orphan" {
  capabilities = ["deny"]
}
