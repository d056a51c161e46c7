# Tier: emergency-admin — nobody holds it standing; it is only handed out
# through an approved, time-boxed break-glass grant.
#
# An allow-list of what fixing production needs: read and write every team's
# secrets, find and revoke tokens (and leases), tune mounts, read the audit
# device table, policies and metrics. Nothing else: no user, auth-method, MFA,
# audit, seal, key or policy administration, no tokens of its own making and
# no destroying of versions, so nothing it does outlives its grant and nothing
# it does cannot be undone. A path not named here is denied.

# Every team's secrets on the `secret/` mount (add the same block for other
# KV mounts). Soft delete and undelete, never destroy: no "destroy/", no
# "delete" on metadata, no max_versions or delete_version_after.
path "secret/data/*" {
  capabilities = ["create", "read", "update", "patch", "delete"]
}

path "secret/subkeys/*" {
  capabilities = ["read"]
}

path "secret/metadata/*" {
  capabilities = ["create", "read", "list", "update", "patch"]
  denied_parameters = {
    "max_versions"         = []
    "delete_version_after" = []
  }
}

path "secret/delete/*" {
  capabilities = ["update"]
}

path "secret/undelete/*" {
  capabilities = ["update"]
}

path "secret/config" {
  capabilities = ["read"]
}

# Find and revoke tokens (a leaked token, a runaway service). Never create,
# renew or orphan: those would let access outlive the grant.
path "auth/token/lookup" {
  capabilities = ["read", "update"]
}

path "auth/token/lookup-accessor" {
  capabilities = ["update"]
}

path "auth/token/revoke" {
  capabilities = ["update"]
}

path "auth/token/revoke-accessor" {
  capabilities = ["update"]
}

# Leases (engines that issue them are still to come). revoke-prefix and
# lookup listings are root-protected, hence sudo on exactly those paths.
path "sys/leases/lookup" {
  capabilities = ["update"]
}

path "sys/leases/lookup/*" {
  capabilities = ["list", "sudo"]
}

path "sys/leases/revoke" {
  capabilities = ["update"]
}

path "sys/leases/revoke-prefix/*" {
  capabilities = ["update", "sudo"]
}

# Mounts: look at them and tune them (TTLs, description); never enable or
# disable one (disabling deletes every secret in it). `+` is one segment, so
# mounts one and two segments deep.
path "sys/mounts" {
  capabilities = ["read"]
}

path "sys/mounts/*" {
  capabilities = ["read"]
}

path "sys/mounts/+/tune" {
  capabilities = ["read", "update"]
}

path "sys/mounts/+/+/tune" {
  capabilities = ["read", "update"]
}

path "sys/internal/ui/mounts" {
  capabilities = ["read"]
}

path "sys/internal/ui/mounts/*" {
  capabilities = ["read"]
}

# Auth methods and policies: look, never change.
path "sys/auth" {
  capabilities = ["read"]
}

# (a LIST of sys/policies/acl is decided on "sys/policies/acl/")
path "sys/policies/acl/*" {
  capabilities = ["read", "list"]
}

path "sys/policy" {
  capabilities = ["read"]
}

path "sys/policy/*" {
  capabilities = ["read"]
}

# Why is a service denied: what a token or accessor may do.
path "sys/capabilities" {
  capabilities = ["update"]
}

path "sys/capabilities-accessor" {
  capabilities = ["update"]
}

# Audit: read the device table (root-protected, hence sudo on this one path),
# hash a value to find it in the log, fetch the checkpoint key. Never enable
# or disable a device.
path "sys/audit" {
  capabilities = ["read", "sudo"]
}

path "sys/audit-hash/*" {
  capabilities = ["update"]
}

path "sys/audit-checkpoint-key" {
  capabilities = ["read"]
}

# Health of the node.
path "sys/metrics" {
  capabilities = ["read"]
}

path "sys/key-status" {
  capabilities = ["read"]
}

path "sys/locked-users" {
  capabilities = ["read"]
}
