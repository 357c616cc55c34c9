//! Checking that a webhook came from Stripe: the `Stripe-Signature` header is
//! `t=<unix seconds>,v1=<hex HMAC-SHA256>[,v1=…]` over `"{t}.{raw body}"` with the endpoint's
//! secret. Owned here rather than taken from async-stripe, whose parser keeps only the last `v1`
//! (during a secret rotation Stripe sends one per secret, the new one not necessarily last).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far a signature's time may be from ours, either way (Stripe's libraries use 300 s).
pub const TOLERANCE_SECS: i64 = 300;

/// Why a webhook was refused (each answered 400; nothing is stored).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the Stripe-Signature header is missing or malformed")]
    Malformed,
    #[error("the signature's timestamp is {0} s away from now, beyond the {TOLERANCE_SECS} s tolerance")]
    Stale(i64),
    #[error("no v1 signature matches the endpoint's secret")]
    Mismatch,
}

/// Checks `header` against `body` and `secret` at `now` (Unix seconds).
pub fn verify(header: &str, body: &[u8], secret: &str, now: i64) -> Result<(), Refused> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let (key, value) = part.trim().split_once('=').ok_or(Refused::Malformed)?;
        match key {
            "t" => timestamp = Some(value.parse::<i64>().map_err(|_| Refused::Malformed)?),
            // Only v1 is a real scheme (v0 is a test-mode decoy); unknown ones are ignored.
            "v1" => signatures.push(decode_hex(value).ok_or(Refused::Malformed)?),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(Refused::Malformed)?;
    if signatures.is_empty() {
        return Err(Refused::Malformed);
    }
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    // Compared in constant time against each (`verify_slice`), so timing says nothing.
    let matched = signatures.iter().any(|signature| mac.clone().verify_slice(signature).is_ok());
    if !matched {
        return Err(Refused::Mismatch);
    }
    let skew = (now - timestamp).abs();
    if skew > TOLERANCE_SECS {
        return Err(Refused::Stale(skew));
    }
    Ok(())
}

/// The header Stripe would send for `body` at `timestamp` (the stand-in signs this way too).
pub fn sign(body: &[u8], secret: &str, timestamp: i64) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    format!("t={timestamp},v1={}", crate::db::hex(&mac.finalize().into_bytes()))
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.len() > 128 {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const BODY: &[u8] = br#"{"id":"evt_1","object":"event"}"#;
    const T: i64 = 1_800_000_000;

    #[test]
    fn a_signature_made_with_the_secret_passes_within_the_tolerance() {
        let header = sign(BODY, SECRET, T);
        assert_eq!(verify(&header, BODY, SECRET, T), Ok(()));
        assert_eq!(verify(&header, BODY, SECRET, T + TOLERANCE_SECS), Ok(()));
        assert_eq!(verify(&header, BODY, SECRET, T - TOLERANCE_SECS), Ok(()));
        assert_eq!(verify(&header, BODY, SECRET, T + TOLERANCE_SECS + 1), Err(Refused::Stale(TOLERANCE_SECS + 1)));
        assert_eq!(verify(&header, BODY, SECRET, T - TOLERANCE_SECS - 1), Err(Refused::Stale(TOLERANCE_SECS + 1)));
    }

    #[test]
    fn the_signature_matches_an_independent_computation() {
        // printf '1800000000.{"id":"evt_1","object":"event"}' | openssl dgst -sha256 -hmac whsec_test_secret
        let openssl = "d0ffffa7434b9a227ebe60bf97ad6137fbc31cbd39613e1ac0e4bc924c41fde7";
        assert_eq!(sign(BODY, SECRET, T), format!("t={T},v1={openssl}"));
    }

    #[test]
    fn tampering_another_secret_or_a_malformed_header_is_refused() {
        let header = sign(BODY, SECRET, T);
        assert_eq!(verify(&header, br#"{"id":"evt_2","object":"event"}"#, SECRET, T), Err(Refused::Mismatch));
        assert_eq!(verify(&header, BODY, "whsec_other", T), Err(Refused::Mismatch));
        for bad in ["", "t=abc,v1=00", "v1=00", "t=1800000000", "t=1800000000,v1=zz", "garbage"] {
            assert_eq!(verify(bad, BODY, SECRET, T), Err(Refused::Malformed), "{bad:?}");
        }
        // A stale header with a wrong signature says it doesn't match (checked first).
        assert_eq!(verify(&header, BODY, "whsec_other", T + 10_000), Err(Refused::Mismatch));
    }

    #[test]
    fn during_a_rotation_any_v1_may_match_and_v0_is_ignored() {
        let new = sign(BODY, SECRET, T);
        let old = sign(BODY, "whsec_old", T);
        let old_v1 = old.split_once(",v1=").unwrap().1;
        let new_v1 = new.split_once(",v1=").unwrap().1;
        let both = format!("t={T},v1={new_v1},v1={old_v1},v0=deadbeef");
        assert_eq!(verify(&both, BODY, SECRET, T), Ok(()));
        assert_eq!(verify(&both, BODY, "whsec_old", T), Ok(()));
        let old_first = format!("t={T},v1={old_v1},v1={new_v1}");
        assert_eq!(verify(&old_first, BODY, SECRET, T), Ok(()));
    }
}
