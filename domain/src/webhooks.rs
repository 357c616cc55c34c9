//! Outgoing webhooks: the catalogue of events an organization's endpoints can receive (with the
//! example payloads its catalogue page shows), and the rules for an endpoint's settings. Shared
//! so the form checks as you type with the server's own rules.

use crate::input::FieldError;
use serde::{Deserialize, Serialize};

/// The envelope's version: it changes only when a payload changes in a way that could break a
/// receiver (a field removed or retyped); added fields don't change it.
pub const API_VERSION: &str = "2026-12-09";

/// How long, after a rotation, the previous secret still signs (both signatures are sent), so
/// receivers can switch to the new secret without dropping a delivery.
pub const ROTATION_OVERLAP_HOURS: i64 = 24;

/// What a delivery attempt keeps of the response body (and of error text), in bytes.
pub const RESPONSE_KEPT_BYTES: usize = 4096;

/// How long events and their delivery logs are kept.
pub const KEPT_DAYS: i32 = 30;

/// Deliveries one page of an endpoint's log shows.
pub const DELIVERIES_PER_PAGE: i64 = 50;

macro_rules! event_types {
    ($($name:ident = $wire:literal, $resource:literal, $doc:literal, $example:literal;)*) => {
        /// One kind of event an endpoint can subscribe to.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum EventType {
            $($name,)*
        }

        impl EventType {
            pub const ALL: &'static [EventType] = &[$(EventType::$name),*];

            /// `project.created`: what the envelope's `type` says.
            pub const fn as_str(self) -> &'static str {
                match self { $(EventType::$name => $wire,)* }
            }

            /// What kind of thing it is about; deliveries about one thing go out in order.
            pub const fn resource(self) -> &'static str {
                match self { $(EventType::$name => $resource,)* }
            }

            pub const fn description(self) -> &'static str {
                match self { $(EventType::$name => $doc,)* }
            }

            /// An example of the envelope's `data` (JSON), as the catalogue shows it.
            pub const fn example_data(self) -> &'static str {
                match self { $(EventType::$name => $example,)* }
            }
        }
    };
}

event_types! {
    ProjectCreated = "project.created", "project", "A project was created.",
        r#"{"project": {"id": "0193a5c2-7d1e-7a40-9c1b-4f3e2d1c0b9a", "name": "Website relaunch", "description": "Everything for the March launch", "created_by": "4d1f0c6e-2b7a-4c39-8e51-0f9a6b3c2d17", "created_at": "2026-12-09T10:15:00Z", "updated_at": "2026-12-09T10:15:00Z"}}"#;
    ProjectUpdated = "project.updated", "project", "A project's name or description changed. `previous` has the old values of the fields that changed.",
        r#"{"project": {"id": "0193a5c2-7d1e-7a40-9c1b-4f3e2d1c0b9a", "name": "Website relaunch 2027", "description": "Everything for the March launch", "created_by": "4d1f0c6e-2b7a-4c39-8e51-0f9a6b3c2d17", "created_at": "2026-12-09T10:15:00Z", "updated_at": "2026-12-09T11:02:41Z"}, "previous": {"name": "Website relaunch"}}"#;
    ProjectDeleted = "project.deleted", "project", "A project (and its documents) was deleted. `project` is what it was.",
        r#"{"project": {"id": "0193a5c2-7d1e-7a40-9c1b-4f3e2d1c0b9a", "name": "Website relaunch 2027", "description": "Everything for the March launch", "created_by": "4d1f0c6e-2b7a-4c39-8e51-0f9a6b3c2d17", "created_at": "2026-12-09T10:15:00Z", "updated_at": "2026-12-09T11:02:41Z"}}"#;
    MemberAdded = "member.added", "member", "Someone joined the organization (added by an admin, by accepting an invitation, or through single sign-on).",
        r#"{"member": {"user_id": "9b2e7c1d-5a34-4f0e-b6d8-2c1a0e9f7b35", "email": "ada@example.com", "name": "Ada Lovelace", "role": "member"}}"#;
    MemberRoleChanged = "member.role_changed", "member", "A member's role changed. `previous` has the old role.",
        r#"{"member": {"user_id": "9b2e7c1d-5a34-4f0e-b6d8-2c1a0e9f7b35", "email": "ada@example.com", "name": "Ada Lovelace", "role": "admin"}, "previous": {"role": "member"}}"#;
    MemberRemoved = "member.removed", "member", "Someone was removed from the organization. `member` is who they were there.",
        r#"{"member": {"user_id": "9b2e7c1d-5a34-4f0e-b6d8-2c1a0e9f7b35", "email": "ada@example.com", "name": "Ada Lovelace", "role": "admin"}}"#;
    BillingChanged = "billing.changed", "billing", "The organization's billing state or plan changed: a trial started or ended, a subscription began, changed plan, was set to end, a payment failed, the organization became read-only or was restored, the subscription ended. `previous` has the state before; times are null when they don't apply. `read_only`: writes are refused until a payment goes through (an `ended` organization with more than the free plan includes is read-only too, until it is within it).",
        r#"{"billing": {"state": "active", "plan": "business", "interval": "month", "read_only": false, "trial_ends_at": null, "renews_at": "2027-01-09T10:15:00Z", "cancels_at": null, "restricts_at": null, "ended_at": null}, "previous": {"state": "trialing", "plan": "team"}}"#;
    WebhookTest = "webhook.test", "endpoint", "Sent by \"Send test event\" on the endpoint's page, to that endpoint only, whatever it subscribes to.",
        r#"{"endpoint_id": "2f8c4e1a-6b3d-4a7e-9c05-1d2e3f4a5b6c", "message": "A test event from Tessera. If you can read this, your endpoint receives and can verify our webhooks."}"#;
}

impl EventType {
    pub fn parse(raw: &str) -> Option<EventType> {
        EventType::ALL.iter().copied().find(|t| t.as_str() == raw)
    }

    /// The types an endpoint may subscribe to (test events aren't subscribed to; they're sent).
    pub fn subscribable() -> impl Iterator<Item = EventType> {
        EventType::ALL.iter().copied().filter(|t| *t != EventType::WebhookTest)
    }
}

/// An endpoint's address: `https://` (or `http://` where the deployment allows it, for local
/// development), a host, no user name or password, at most 2,000 characters. The server checks
/// more when it delivers (the address the host resolves to must be public).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    pub const MAX_LEN: usize = 2000;

    pub fn parse(raw: &str, allow_http: bool) -> Result<Self, FieldError> {
        let url = raw.trim();
        let err = |m: &str| Err(FieldError::new("url", m));
        if url.is_empty() {
            return err("Enter the URL that should receive the events, e.g. https://example.com/webhooks/tessera.");
        }
        if url.len() > Self::MAX_LEN {
            return err("That URL is too long (2,000 characters at most).");
        }
        if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return err("A URL can't contain spaces or control characters.");
        }
        let lower = url.to_ascii_lowercase();
        let rest = if let Some(rest) = lower.strip_prefix("https://") {
            rest
        } else if let Some(rest) = lower.strip_prefix("http://") {
            if !allow_http {
                return err("Use an https:// URL: events carry your organization's data, which must not travel unencrypted.");
            }
            rest
        } else {
            return err("Enter a full URL starting with https://, e.g. https://example.com/webhooks/tessera.");
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            return err("Leave the user name and password out of the URL: receivers check our signature instead.");
        }
        let host = match authority.rsplit_once(':') {
            // An IPv6 literal's colons are inside its brackets.
            Some((host, port)) if !port.contains(']') => {
                if port.parse::<u16>().map_or(true, |p| p == 0) {
                    return err("The port after the host must be a number from 1 to 65535.");
                }
                host
            }
            _ => authority,
        };
        let host_ok = !host.is_empty()
            && (host.starts_with('[') && host.ends_with(']')
                || host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') && !host.starts_with('.') && !host.contains(".."));
        if !host_ok {
            return err("Enter a URL with a valid host name, e.g. https://example.com/webhooks/tessera.");
        }
        if rest.contains('#') {
            return err("Leave out the #fragment: it is never sent to the server.");
        }
        Ok(WebhookUrl(url.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What an endpoint is for, as its admins will recognise it: one line, up to 500 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookDescription(String);

impl WebhookDescription {
    pub const MAX_LEN: usize = 500;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        if raw.chars().any(char::is_control) {
            return Err(FieldError::new("description", "The description is one line: no line breaks or control characters."));
        }
        let value = raw.trim();
        if value.chars().count() > Self::MAX_LEN {
            return Err(FieldError::new("description", "Keep the description to 500 characters or fewer."));
        }
        Ok(WebhookDescription(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The event types an endpoint receives: at least one, each from the catalogue, in catalogue
/// order without repeats.
pub fn parse_event_types<S: AsRef<str>>(raw: &[S]) -> Result<Vec<EventType>, FieldError> {
    let mut chosen = Vec::new();
    for name in raw {
        let name = name.as_ref().trim();
        match EventType::parse(name).filter(|t| *t != EventType::WebhookTest) {
            Some(t) => chosen.push(t),
            None => {
                let shown: String = name.chars().filter(|c| !c.is_control()).take(60).collect();
                return Err(FieldError::new(
                    "event_types",
                    format!("\"{shown}\" isn't an event type endpoints can receive. Choose from the list; the event catalogue describes each."),
                ));
            }
        }
    }
    if chosen.is_empty() {
        return Err(FieldError::new("event_types", "Choose at least one event for this endpoint to receive."));
    }
    chosen.sort_by_key(|t| EventType::ALL.iter().position(|x| x == t));
    chosen.dedup();
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_https_with_a_host_and_no_credentials() {
        assert!(WebhookUrl::parse(" https://example.com/hooks?x=1 ", false).is_ok());
        assert!(WebhookUrl::parse("https://example.com:8443/hooks", false).is_ok());
        assert!(WebhookUrl::parse("https://[2001:db8::1]:8443/hooks", false).is_ok());
        assert!(WebhookUrl::parse("http://127.0.0.1:9000/hooks", true).is_ok());
        for bad in [
            "",
            "example.com/hooks",
            "ftp://example.com",
            "http://example.com/hooks",
            "https://user:pass@example.com/",
            "https:///path",
            "https://exa mple.com/",
            "https://example.com:0/",
            "https://example.com:99999/",
            "https://exa_mple.com/",
            "https://example.com/#top",
            "https://example.com/\nX-Injected: 1",
        ] {
            assert!(WebhookUrl::parse(bad, false).is_err(), "{bad:?} was accepted");
        }
        assert!(WebhookUrl::parse(&format!("https://example.com/{}", "a".repeat(2000)), false).is_err());
    }

    #[test]
    fn event_types_come_from_the_catalogue() {
        assert_eq!(
            parse_event_types(&["member.added", "project.created", "member.added"]).unwrap(),
            vec![EventType::ProjectCreated, EventType::MemberAdded]
        );
        assert!(parse_event_types::<&str>(&[]).is_err());
        assert!(parse_event_types(&["project.exploded"]).unwrap_err().message.contains("project.exploded"));
        assert!(parse_event_types(&["webhook.test"]).is_err());
    }

    #[test]
    fn each_type_has_a_unique_dotted_name_and_an_example() {
        let mut names: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        for t in EventType::ALL {
            assert!(t.as_str().starts_with(t.resource()) || *t == EventType::WebhookTest, "{t:?}");
            assert!(t.example_data().starts_with('{') && t.example_data().ends_with('}'), "{t:?}");
            let parsed: serde_json::Value = serde_json::from_str(t.example_data()).unwrap();
            assert!(parsed.is_object());
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EventType::ALL.len());
    }

    #[test]
    fn descriptions_are_one_line_and_bounded() {
        assert!(WebhookDescription::parse("CRM sync").is_ok());
        assert!(WebhookDescription::parse("two\nlines").is_err());
        assert!(WebhookDescription::parse(&"x".repeat(501)).is_err());
        assert_eq!(WebhookDescription::parse("  ").unwrap().as_str(), "");
    }
}
