-- Signing up again with an address whose account was never confirmed mails a fresh
-- confirmation link carrying the password chosen this time: the account takes it when that
-- link confirms it (whoever registered first may not have been the inbox's owner).
ALTER TABLE auth_tokens ADD COLUMN password_hash text;
COMMENT ON COLUMN auth_tokens.password_hash IS
    'verify_email links from a repeated sign-up: the password (Argon2 hash) the account takes when the link confirms it';
