-- One table of opaque entries. Values are barrier ciphertext; the server never
-- stores a plaintext secret, key or token here. `expires_at` (unix seconds) is set
-- for entries that die on their own (tokens, later leases) so that background
-- work finds them through the index instead of loading everything at unseal.
-- COLLATE "C" gives byte order, which prefix range scans rely on.
CREATE TABLE coffer_entries (
    key        TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    value      BYTEA NOT NULL,
    expires_at BIGINT
);

CREATE INDEX coffer_entries_expires_at ON coffer_entries (expires_at)
    WHERE expires_at IS NOT NULL;
