//! Sending email. One trait, [`Mailer`], with an SMTP implementation (lettre), an HTTP one for
//! Resend's API, and, when nothing is configured, one that writes each message as an `.eml`
//! file into the data folder and logs where, so a fresh checkout can follow its own sign-in
//! links without a mail server.

pub mod templates;

use crate::error::{Error, Result};
use async_trait::async_trait;
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::PathBuf;
use std::sync::Arc;

/// One message, with HTML and plain-text bodies.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct OutgoingEmail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The id of the job sending it: the SMTP `Message-ID` and Resend's idempotency key, so a
    /// message sent again (its worker died between sending and recording it) is known to be
    /// the same one. `None` outside the queue.
    #[serde(skip)]
    pub id: Option<uuid::Uuid>,
    /// Files sent with it (an invoice's PDF with its receipt).
    #[serde(default)]
    pub attachments: Vec<Attachment>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Attachment {
    pub filename: String,
    /// `application/pdf`.
    pub content_type: String,
    /// The file, base64 (compact in the queued mail's JSON).
    pub base64: String,
}

impl Attachment {
    pub fn new(filename: impl Into<String>, content_type: impl Into<String>, bytes: &[u8]) -> Self {
        use base64::Engine;
        Attachment { filename: filename.into(), content_type: content_type.into(), base64: base64::engine::general_purpose::STANDARD.encode(bytes) }
    }

    fn bytes(&self) -> Result<Vec<u8>> {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.decode(&self.base64).map_err(|e| Error::Internal(format!("an attachment: {e}")))
    }
}

/// An email waiting in the job queue. Sealed with a key of its own: mails carry sign-in links,
/// which must not sit readable in the database (or its backups).
#[derive(serde::Serialize, serde::Deserialize)]
pub struct SendMail {
    sealed: String,
}

impl SendMail {
    pub(crate) fn seal(secret: &crate::secrets::SecretKey, email: &OutgoingEmail) -> Result<SendMail> {
        use base64::Engine;
        let plain = serde_json::to_vec(email)?;
        Ok(SendMail { sealed: base64::engine::general_purpose::STANDARD.encode(secret.seal(crate::secrets::KeyPurpose::MailSeal, &plain)) })
    }

    pub(crate) fn open(&self, secret: &crate::secrets::SecretKey) -> Result<OutgoingEmail> {
        use base64::Engine;
        let sealed = base64::engine::general_purpose::STANDARD.decode(&self.sealed).map_err(|e| Error::Internal(format!("a queued email: {e}")))?;
        let plain = secret.open(crate::secrets::KeyPurpose::MailSeal, &sealed).map_err(|e| Error::Internal(e.to_string()))?;
        Ok(serde_json::from_slice(&plain)?)
    }
}

impl crate::jobs::Job for SendMail {
    const KIND: &'static str = "mail.send";
    const MAX_ATTEMPTS: i32 = 10;

    async fn run(self, job: &crate::jobs::RunningJob) -> Result<()> {
        job.backend.identity.deliver(self, job.id).await
    }
}

crate::register_job!(SendMail);

#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    async fn send(&self, email: OutgoingEmail) -> Result<()>;
}

/// Where mail goes, from configuration.
#[derive(Clone, Debug)]
pub enum EmailConfig {
    /// `smtp://host:port` (plain, for local catchers), `smtp://user:pass@host:587?tls=required`
    /// (STARTTLS) or `smtps://user:pass@host` (implicit TLS).
    Smtp { url: String, from: String },
    /// Resend's HTTP API (`endpoint` is `https://api.resend.com/emails` in production).
    Resend { api_key: String, endpoint: String, from: String },
    /// Write `.eml` files into `dir`.
    Files { dir: PathBuf, from: String },
}

pub fn mailer(config: &EmailConfig) -> Result<Arc<dyn Mailer>> {
    Ok(match config {
        EmailConfig::Smtp { url, from } => {
            let transport =
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url).map_err(|e| Error::Internal(format!("TESSERA_SMTP_URL: {e}")))?.build();
            Arc::new(SmtpMailer { transport, from: parse_from(from)? })
        }
        EmailConfig::Resend { api_key, endpoint, from } => {
            parse_from(from)?;
            let client = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(15))
                .build()
                .map_err(|e| Error::Internal(format!("HTTP client: {e}")))?;
            Arc::new(ResendMailer { client, api_key: api_key.clone(), endpoint: endpoint.clone(), from: from.clone() })
        }
        EmailConfig::Files { dir, from } => Arc::new(FileMailer { dir: dir.clone(), from: parse_from(from)? }),
    })
}

fn parse_from(from: &str) -> Result<Mailbox> {
    from.parse().map_err(|e| Error::Internal(format!("TESSERA_EMAIL_FROM {from:?}: {e}")))
}

fn message(from: &Mailbox, email: &OutgoingEmail) -> Result<Message> {
    // The address stays out of the error: it is kept with a failed job, and logged.
    let to: Mailbox = email.to.parse().map_err(|_| Error::Internal("the recipient's address doesn't parse".into()))?;
    let domain = from.email.domain();
    let body = MultiPart::alternative()
        .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(email.text.clone()))
        .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(email.html.clone()));
    let body = if email.attachments.is_empty() {
        body
    } else {
        let mut mixed = MultiPart::mixed().multipart(body);
        for attachment in &email.attachments {
            let kind = ContentType::parse(&attachment.content_type).map_err(|e| Error::Internal(format!("an attachment's type: {e}")))?;
            mixed = mixed.singlepart(lettre::message::Attachment::new(attachment.filename.clone()).body(attachment.bytes()?, kind));
        }
        mixed
    };
    Message::builder()
        .message_id(email.id.map(|id| format!("<{id}@{domain}>")))
        .from(from.clone())
        .to(to)
        .subject(&email.subject)
        .multipart(body)
        .map_err(|e| Error::Internal(format!("building an email: {e}")))
}

struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, email: OutgoingEmail) -> Result<()> {
        let message = message(&self.from, &email)?;
        self.transport.send(message).await.map_err(|e| Error::Internal(format!("sending email: {e}")))?;
        Ok(())
    }
}

struct ResendMailer {
    client: reqwest::Client,
    api_key: String,
    endpoint: String,
    from: String,
}

#[async_trait]
impl Mailer for ResendMailer {
    async fn send(&self, email: OutgoingEmail) -> Result<()> {
        let body = serde_json::json!({
            "from": self.from,
            "to": [email.to],
            "subject": email.subject,
            "html": email.html,
            "text": email.text,
            "attachments": email.attachments.iter().map(|a| serde_json::json!({ "filename": a.filename, "content": a.base64 })).collect::<Vec<_>>(),
        });
        let mut request = self.client.post(&self.endpoint).bearer_auth(&self.api_key);
        if let Some(id) = email.id {
            // Resend sends a message once per key (within a day).
            request = request.header("Idempotency-Key", id.to_string());
        }
        let response = request.json(&body).send().await.map_err(|e| Error::Internal(format!("sending email through Resend: {e}")))?;
        if !response.status().is_success() {
            let status = response.status();
            let detail = response.text().await.unwrap_or_default();
            return Err(Error::Internal(format!("Resend refused an email ({status}): {}", detail.chars().take(300).collect::<String>())));
        }
        Ok(())
    }
}

struct FileMailer {
    dir: PathBuf,
    from: Mailbox,
}

#[async_trait]
impl Mailer for FileMailer {
    async fn send(&self, email: OutgoingEmail) -> Result<()> {
        tokio::fs::create_dir_all(&self.dir).await.map_err(|e| Error::Internal(format!("creating {}: {e}", self.dir.display())))?;
        let message = message(&self.from, &email)?;
        let id = AsyncFileTransport::<Tokio1Executor>::new(&self.dir)
            .send(message)
            .await
            .map_err(|e| Error::Internal(format!("writing email to {}: {e}", self.dir.display())))?;
        // Logs travel further than the data folder (to log services, to colleagues), and a link's
        // token signs its holder in: the log shows the mail with tokens blanked, and the file
        // has the working links.
        tracing::info!(
            to = %email.to,
            subject = %email.subject,
            file = %self.dir.join(format!("{id}.eml")).display(),
            body = %redact_tokens(&email.text),
            "email written to the data folder (no SMTP configured; open the file for its links)"
        );
        Ok(())
    }
}

/// `text` with the value of every `token=` query parameter replaced.
fn redact_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("token=") {
        let (before, after) = rest.split_at(at + "token=".len());
        out.push_str(before);
        let end = after.find(|c: char| c.is_whitespace() || c == '&').unwrap_or(after.len());
        out.push_str("[redacted]");
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_blanked_in_logged_mail() {
        let text = "Sign in: https://app.test/auth/magic?token=abc123&x=1\nOr https://app.test/invite?token=zzz\n";
        assert_eq!(
            super::redact_tokens(text),
            "Sign in: https://app.test/auth/magic?token=[redacted]&x=1\nOr https://app.test/invite?token=[redacted]\n"
        );
    }
}
