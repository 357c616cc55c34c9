//! Outgoing webhooks: an organization's Owners and Admins register HTTPS endpoints, and each
//! event they subscribe to is sent there, signed, retried, and logged.
//!
//! - **Endpoints** ([`endpoints`]): URL, description, event types, on/off; a `whsec_` signing
//!   secret shown once, sealed at rest, rotated with a 24-hour overlap in which both sign.
//! - **Events** ([`events`]): recorded in the transaction of the change they describe (the
//!   door's outbox then queues their deliveries), as a versioned envelope whose bytes are fixed
//!   then, so every attempt and every resend sends the same body.
//! - **Deliveries** ([`delivery`]): one job per (event, endpoint), signed per the Standard
//!   Webhooks specification, retried after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h, each
//!   attempt logged; an endpoint failing for [`Webhooks::disable_after`] is switched off and
//!   its Owners told. Deliveries about one resource to one endpoint go in order: a later one
//!   is held until the earlier one is delivered or has failed for good.
//! - **Outbound safety**: only public addresses, checked on the address each delivery connects
//!   to (so DNS rebinding gets nowhere), no redirects, a 15-second limit, 4 KiB of the answer
//!   kept. The same guard as the SSO metadata fetch (`sso::outbound`).

pub mod delivery;
pub mod endpoints;
pub mod events;
pub mod log;

use crate::error::Result;
use crate::secrets::{KeyPurpose, SecretKey};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;

/// What webhooks need beyond the database: the HTTP client that delivers, the key that seals
/// signing secrets, and the deployment's rules.
#[derive(Clone)]
pub struct Webhooks {
    http: reqwest::Client,
    secret: SecretKey,
    /// Whether endpoints may be `http://` and reach private addresses (local development and
    /// tests only: `TESSERA_WEBHOOK_PRIVATE_HOSTS`).
    private_hosts: bool,
    /// How long an endpoint may fail without a success before it is switched off.
    pub disable_after: Duration,
}

impl Webhooks {
    pub fn new(secret: SecretKey) -> Result<Self> {
        Ok(Self { http: client(false)?, secret, private_hosts: false, disable_after: Duration::from_secs(5 * 24 * 3600) })
    }

    /// Lets endpoints use `http://` and private addresses (`TESSERA_WEBHOOK_PRIVATE_HOSTS`).
    pub fn allow_private_hosts(&mut self) -> Result<()> {
        self.http = client(true)?;
        self.private_hosts = true;
        Ok(())
    }

    pub fn private_hosts(&self) -> bool {
        self.private_hosts
    }

    fn seal(&self, secret: &str) -> Vec<u8> {
        self.secret.seal(KeyPurpose::WebhookSeal, secret.as_bytes())
    }

    fn open(&self, sealed: &[u8]) -> Result<String> {
        let plain = self.secret.open(KeyPurpose::WebhookSeal, sealed).map_err(|e| crate::Error::Internal(e.to_string()))?;
        String::from_utf8(plain).map_err(|e| crate::Error::Internal(e.to_string()))
    }
}

fn client(private_hosts: bool) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        // A redirect could steer a delivery somewhere internal; receivers get the final URL.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .user_agent("Tessera-Webhooks/1")
        // No proxy from the environment: it would resolve names where we can't check them.
        .no_proxy();
    if !private_hosts {
        builder = builder.dns_resolver(std::sync::Arc::new(crate::sso::outbound::PublicOnly));
    }
    builder.build().map_err(|e| crate::Error::Internal(e.to_string()))
}

/// A new signing secret: `whsec_` and 32 random bytes in base64, as Standard Webhooks has it.
fn new_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The `v1,<base64>` signature of one delivery attempt: HMAC-SHA256, keyed with the secret's
/// bytes, over `{webhook-id}.{webhook-timestamp}.{body}` (the Standard Webhooks scheme).
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> Result<String> {
    let key = secret.strip_prefix("whsec_").unwrap_or(secret);
    let key =
        base64::engine::general_purpose::STANDARD.decode(key).map_err(|e| crate::Error::Internal(format!("a signing secret isn't base64: {e}")))?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    Ok(format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example from the Standard Webhooks specification's reference tests.
    #[test]
    fn signatures_match_the_specifications_example() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        let signature = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn new_secrets_are_32_random_bytes() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        let bytes = base64::engine::general_purpose::STANDARD.decode(a.strip_prefix("whsec_").unwrap()).unwrap();
        assert_eq!(bytes.len(), 32);
    }
}
