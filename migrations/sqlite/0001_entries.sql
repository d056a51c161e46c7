-- One table of opaque entries. Values are barrier ciphertext; the server never
-- stores a plaintext secret, key or token here. `expires_at` (unix seconds) is set
-- for entries that die on their own (tokens, later leases) so that background
-- work finds them through the index instead of loading everything at unseal.
CREATE TABLE coffer_entries (
    key        TEXT PRIMARY KEY NOT NULL,
    value      BLOB NOT NULL,
    expires_at INTEGER
);

CREATE INDEX coffer_entries_expires_at ON coffer_entries (expires_at)
    WHERE expires_at IS NOT NULL;
