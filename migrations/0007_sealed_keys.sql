-- Private signing keys sealed in the database (issue 8): when JOBTOKEN_KEY_ENCRYPTION_KEY is set
-- (and always on PostgreSQL, whose 0001_schema.sql has this column already), a key's PKCS#8 PEM is
-- stored here, sealed with AES-256-GCM under that key-encryption key, in the same transaction as
-- its metadata. NULL for a key whose private key lives in the keys directory.
ALTER TABLE signing_keys ADD COLUMN sealed_private_key BLOB;
