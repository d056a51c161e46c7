# Not a tier and not written at init: the capability that makes a person a
# break-glass approver. Attach it to the admins who approve emergency access
# (their own logins must pass TOTP, and each approval needs a fresh code).
# The developer tier denies this path, so a developer can never approve.
path "sys/breakglass/approve" {
  capabilities = ["update"]
}
