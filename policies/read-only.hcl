# Tier: read-only — auditors, dashboards, most services.
# An allow-list: reads and lists the KV secrets under `secret/`; nothing else.
# No writes, no deletes, no token creation, no system paths. Copy and narrow
# the paths for a service (a dashboard rarely needs every secret).

path "secret/data/*" {
  capabilities = ["read"]
}

path "secret/subkeys/*" {
  capabilities = ["read"]
}

path "secret/metadata/*" {
  capabilities = ["read", "list"]
}

# Lets `bao kv get` find out which KV version a mount speaks.
path "sys/internal/ui/mounts/*" {
  capabilities = ["read"]
}
