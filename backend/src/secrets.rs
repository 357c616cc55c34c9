//! The deployment's master secret (`TESSERA_SECRET_KEY`) and the keys derived from it: one per
//! purpose, so the key that signs API tokens is never the key that seals TOTP secrets.

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

#[derive(Clone)]
pub struct SecretKey(Vec<u8>);

/// What a key is for; each gets its own derived key.
#[derive(Clone, Copy, Debug)]
pub enum KeyPurpose {
    /// Sealing TOTP secrets at rest.
    TotpSeal,
    /// Signing JWT access tokens.
    AccessTokens,
    /// Sealing per-tenant SAML/OIDC client secrets at rest.
    SsoSeal,
    /// Sealing emails waiting in the job queue.
    MailSeal,
    /// Sealing organizations' webhook signing secrets at rest.
    WebhookSeal,
}

impl KeyPurpose {
    fn label(self) -> &'static [u8] {
        match self {
            KeyPurpose::TotpSeal => b"tessera/totp-seal/v1",
            KeyPurpose::AccessTokens => b"tessera/access-tokens/v1",
            KeyPurpose::SsoSeal => b"tessera/sso-seal/v1",
            KeyPurpose::MailSeal => b"tessera/mail-seal/v1",
            KeyPurpose::WebhookSeal => b"tessera/webhook-seal/v1",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("TESSERA_SECRET_KEY must be at least 32 characters (use e.g. `openssl rand -base64 48`)")]
    TooShort,
    #[error("sealed data could not be opened: it was made with another TESSERA_SECRET_KEY, or it was altered")]
    Unseal,
    #[error("this TESSERA_SECRET_KEY is public: it was committed to Tessera's repository (data/secret.key) until 2026-12-02. Generate a new one, e.g. `openssl rand -base64 48`; people then sign in again and set up two-factor again")]
    Published,
}

/// SHA-256 digests of keys that were ever public (committed to the repository), refused at start.
const PUBLISHED_KEYS: [&str; 1] = ["0ad7fb10a093bfd0201851c068776d7756172c9cbbeec4a321e65e44e0aadd45"];

fn is_listed(master: &[u8], digests: &[&str]) -> bool {
    let digest = crate::db::hex(&Sha256::digest(master));
    digests.contains(&digest.as_str())
}

impl SecretKey {
    pub fn new(master: &[u8]) -> Result<Self, SecretError> {
        if master.len() < 32 {
            return Err(SecretError::TooShort);
        }
        if is_listed(master, &PUBLISHED_KEYS) {
            return Err(SecretError::Published);
        }
        Ok(Self(master.to_vec()))
    }

    /// A fresh random key (tests, and the embedded development set-up's first start).
    pub fn generate() -> String {
        use base64::Engine;
        use rand::RngCore;
        let mut bytes = [0u8; 36];
        rand::thread_rng().fill_bytes(&mut bytes);
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    pub fn derive(&self, purpose: KeyPurpose) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(purpose.label());
        mac.finalize().into_bytes().into()
    }

    /// Encrypts and authenticates `plain`; the random nonce travels in front of the ciphertext.
    pub fn seal(&self, purpose: KeyPurpose, plain: &[u8]) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new(&self.derive(purpose).into());
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let mut out = nonce.to_vec();
        out.extend(cipher.encrypt(&nonce, plain).expect("encryption into a Vec cannot fail"));
        out
    }

    pub fn open(&self, purpose: KeyPurpose, sealed: &[u8]) -> Result<Vec<u8>, SecretError> {
        if sealed.len() < 24 {
            return Err(SecretError::Unseal);
        }
        let (nonce, ciphertext) = sealed.split_at(24);
        let cipher = XChaCha20Poly1305::new(&self.derive(purpose).into());
        cipher.decrypt(XNonce::from_slice(nonce), ciphertext).map_err(|_| SecretError::Unseal)
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key that was ever public is refused however it is given; listed by digest only.
    #[test]
    fn published_keys_are_recognised_by_their_digest() {
        let published = "a key that somebody once committed to a repository";
        let digest = crate::db::hex(&Sha256::digest(published.as_bytes()));
        assert!(is_listed(published.as_bytes(), &[digest.as_str()]));
        assert!(!is_listed(b"another key of at least thirty-two characters", &[digest.as_str()]));
        let fresh = SecretKey::generate();
        assert!(!is_listed(fresh.as_bytes(), &PUBLISHED_KEYS) && SecretKey::new(fresh.as_bytes()).is_ok());
    }

    #[test]
    fn sealed_data_opens_only_with_the_same_key_and_purpose() {
        let key = SecretKey::new(SecretKey::generate().as_bytes()).unwrap();
        let sealed = key.seal(KeyPurpose::TotpSeal, b"JBSWY3DPEHPK3PXP");
        assert_eq!(key.open(KeyPurpose::TotpSeal, &sealed).unwrap(), b"JBSWY3DPEHPK3PXP");
        assert!(key.open(KeyPurpose::SsoSeal, &sealed).is_err());
        let other = SecretKey::new(SecretKey::generate().as_bytes()).unwrap();
        assert!(other.open(KeyPurpose::TotpSeal, &sealed).is_err());
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(key.open(KeyPurpose::TotpSeal, &tampered).is_err());
        assert!(SecretKey::new(b"short").is_err());
    }
}
