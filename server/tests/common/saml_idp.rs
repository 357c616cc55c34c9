//! An identity provider inside the test process: it makes a key and certificate, publishes
//! metadata, and mints SAML responses (signed as real IdPs sign them, or deliberately not),
//! so tests can send exactly the response an attack needs.

use base64::Engine;
use samael::crypto::{CertificateDer, CryptoProvider};
use samael::idp::response_builder::{build_response_template, ResponseAttribute};
use samael::idp::sp_extractor::RequiredAttribute;
use samael::idp::{CertificateParams, IdentityProvider, KeyType, Rsa};
use samael::signature::{DigestAlgorithm, Signature};
use samael::traits::ToXml;

pub struct TestIdp {
    pub entity_id: String,
    cert: CertificateDer,
    key_der: Vec<u8>,
}

/// Which parts of the response carry a signature.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Signing {
    Response,
    Assertion,
    Nothing,
}

pub struct Mint<'a> {
    pub name_id: &'a str,
    pub audience: &'a str,
    /// Destination and Recipient.
    pub acs_url: &'a str,
    /// `None`: IdP-initiated (unsolicited).
    pub in_response_to: Option<&'a str>,
    pub attributes: &'a [(&'a str, &'a str)],
    /// Seconds until NotOnOrAfter; negative for an expired response.
    pub valid_for_secs: i64,
    pub signing: Signing,
}

impl<'a> Mint<'a> {
    pub fn new(name_id: &'a str, audience: &'a str, acs_url: &'a str, in_response_to: Option<&'a str>) -> Self {
        Mint { name_id, audience, acs_url, in_response_to, attributes: &[], valid_for_secs: 300, signing: Signing::Response }
    }
}

impl TestIdp {
    pub fn new(entity_id: &str) -> Self {
        let idp = IdentityProvider::generate_new(KeyType::Rsa(Rsa::Rsa2048)).unwrap();
        let cert =
            idp.create_certificate(&CertificateParams { common_name: "test idp", issuer_name: "test idp", days_until_expiration: 30 }).unwrap();
        let key_der = idp.export_private_key_der().unwrap();
        TestIdp { entity_id: entity_id.to_string(), cert, key_der }
    }

    /// Metadata that also lists `other`'s certificate in a key descriptor of no stated use.
    pub fn metadata_with_unmarked_key(&self, sso_url: &str, other: &TestIdp) -> String {
        let cert = base64::engine::general_purpose::STANDARD.encode(other.cert.der_data());
        let unmarked = format!(
            r#"<md:KeyDescriptor><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:NameIDFormat>"#
        );
        self.metadata(sso_url).replacen("<md:NameIDFormat>", &unmarked, 1)
    }

    pub fn metadata(&self, sso_url: &str) -> String {
        let cert = base64::engine::general_purpose::STANDARD.encode(self.cert.der_data());
        format!(
            r#"<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{}">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing">
      <ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>
    </md:KeyDescriptor>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{sso_url}"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>"#,
            self.entity_id
        )
    }

    /// A response as XML (signed as `mint.signing` says).
    pub fn response_xml(&self, mint: &Mint) -> String {
        let names: Vec<RequiredAttribute> = mint.attributes.iter().map(|(n, _)| RequiredAttribute { name: n.to_string(), format: None }).collect();
        let attributes: Vec<ResponseAttribute> =
            names.into_iter().zip(mint.attributes).map(|(required_attribute, (_, value))| ResponseAttribute { required_attribute, value }).collect();
        let mut response = build_response_template(
            &self.cert,
            mint.name_id,
            mint.audience,
            &self.entity_id,
            mint.acs_url,
            mint.in_response_to.unwrap_or(""),
            &attributes,
        );
        let until = chrono::Utc::now() + chrono::Duration::seconds(mint.valid_for_secs);
        let assertion = response.assertion.as_mut().unwrap();
        if let Some(conditions) = assertion.conditions.as_mut() {
            conditions.not_on_or_after = Some(until);
        }
        let confirmation = assertion.subject.as_mut().unwrap().subject_confirmations.as_mut().unwrap()[0].subject_confirmation_data.as_mut().unwrap();
        confirmation.not_on_or_after = Some(until);
        if mint.in_response_to.is_none() {
            confirmation.in_response_to = None;
            response.in_response_to = None;
        }
        if mint.valid_for_secs < 0 {
            // Issued long enough ago to be expired, too.
            response.issue_instant = until;
            assertion.issue_instant = until;
        }
        match mint.signing {
            Signing::Response => {
                response.signature.as_mut().unwrap().signed_info.reference[0].digest_method.algorithm = DigestAlgorithm::Sha256;
                samael::crypto::Crypto::sign_xml(response.to_string().unwrap(), &self.key_der).unwrap()
            }
            Signing::Assertion => {
                response.signature = None;
                let mut signature = Signature::template(&assertion.id, &self.cert);
                signature.signed_info.reference[0].digest_method.algorithm = DigestAlgorithm::Sha256;
                assertion.signature = Some(signature);
                samael::crypto::Crypto::sign_xml(response.to_string().unwrap(), &self.key_der).unwrap()
            }
            Signing::Nothing => {
                response.signature = None;
                response.to_string().unwrap()
            }
        }
    }

    pub fn response(&self, mint: &Mint) -> String {
        encode(&self.response_xml(mint))
    }
}

pub fn encode(xml: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(xml)
}
