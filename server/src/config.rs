//! Configuration from the environment; every variable is listed in the README.

use std::net::SocketAddr;
use std::time::Duration;
use tessera_backend::email::EmailConfig;
use tessera_backend::tenancy::topology::{RegionConfig, TopologyConfig};
use tessera_domain::placement::{RegionName, TenancyModel};

#[derive(Clone, Debug)]
pub struct Config {
    /// The control plane, as the confined `tessera_app` role.
    pub database_url: String,
    /// The control plane as the schema owner; when given, migrations run at start-up.
    pub owner_database_url: Option<String>,
    /// Where tenant data lives: regions, offered models, pool sizes.
    pub topology: TopologyConfig,
    pub addr: SocketAddr,
    /// Where the WASM bundle, CSS and public assets live (`target/site`).
    pub site_root: String,
    /// Mark the session cookie `Secure` (serve over https in production).
    pub secure_cookies: bool,
    pub seed_demo: bool,
    pub db_max_connections: u32,
    /// How long a deleted organization's data is kept before the purge removes it.
    pub deletion_retention: Duration,
    /// The job queue's workers in this process (`TESSERA_JOB_WORKERS`, 0: none here, run
    /// `tessera-server worker` instead), how often idle ones poll, their lease and shutdown grace.
    pub jobs: tessera_backend::jobs::WorkerConfig,
    /// Where mail goes: SMTP when `TESSERA_SMTP_URL` is set, else files in the data folder.
    pub email: EmailConfig,
    /// The address people reach Tessera at, for links in emails.
    pub public_url: String,
    /// The master secret that signs API tokens and seals stored secrets (`TESSERA_SECRET_KEY`,
    /// else a key generated once into the data folder).
    pub secret_key: String,
    /// How long a sign-in or re-authentication lets someone make sensitive changes.
    pub reauth_window: Duration,
    /// API access tokens' lifetime, refresh tokens' lifetime, and how long a just-rotated
    /// refresh token still counts as a concurrent refresh rather than a stolen copy.
    pub access_token_lifetime: Duration,
    pub refresh_token_lifetime: Duration,
    pub refresh_reuse_overlap: Duration,
    /// Outside identity providers for "Continue with …" (`TESSERA_OIDC_PROVIDERS`, JSON).
    pub oidc_providers: Vec<tessera_backend::identity::oidc::ProviderConfig>,
    /// The DNS server for domain verification (`TESSERA_DNS_SERVER`, ip:port); the system's
    /// resolver when unset.
    pub dns_server: Option<std::net::SocketAddr>,
    /// Reverse proxies whose `X-Forwarded-For` names the client (`TESSERA_TRUSTED_PROXIES`:
    /// addresses or CIDR ranges, comma-separated). None by default: the socket peer is the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Whether an IdP's metadata URL may point at a private or local address
    /// (`TESSERA_SSO_PRIVATE_METADATA_HOSTS`): for an IdP on your own network. Off by default,
    /// so an Owner can't make the server fetch from internal services.
    pub sso_private_metadata_hosts: bool,
    /// Whether webhook endpoints may be `http://` and reach private or local addresses
    /// (`TESSERA_WEBHOOK_PRIVATE_HOSTS`): for development against a local receiver. Off by
    /// default, so an Admin can't make the server post to internal services.
    pub webhook_private_hosts: bool,
    /// How long a webhook endpoint may fail every delivery before it is switched off
    /// (`TESSERA_WEBHOOK_DISABLE_AFTER_SECS`, default 5 days).
    pub webhook_disable_after: Duration,
    /// Requests a minute per address before sign-in, per signed-in person, per organization
    /// and per API key (`TESSERA_RATE_LIMIT_PER_ADDRESS`, `…_PER_USER`, `…_PER_ORGANIZATION`,
    /// `…_PER_API_KEY`; 0: no limit).
    pub rate_limits: tessera_backend::rate_limit::Budgets,
    /// Redis keeping those budgets, shared by every server using it (`TESSERA_REDIS_URL`);
    /// unset: each server keeps its own, in memory.
    pub redis_url: Option<String>,
    /// Stripe billing (`TESSERA_STRIPE_SECRET_KEY` and friends); off without a key, and then
    /// every organization is on the free plan.
    pub billing: tessera_backend::billing::BillingConfig,
}

#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

/// `name=url,name=url` (a comma inside a URL is not expected).
fn named_urls(var: &str, value: &str) -> Result<Vec<(RegionName, String)>, ConfigError> {
    value
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, url) = pair.split_once('=').ok_or_else(|| ConfigError(format!("{var}: expected name=postgres://..., got {pair:?}")))?;
            let name = RegionName::parse(name).map_err(|e| ConfigError(format!("{var}: {}", e.message)))?;
            Ok((name, url.trim().to_string()))
        })
        .collect()
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let flag = |name: &str| var(name).is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"));
        let number = |name: &str, default: u64| -> Result<u64, ConfigError> {
            match var(name) {
                Some(v) => v.trim().parse().map_err(|_| ConfigError(format!("{name} {v:?} is not a whole number"))),
                None => Ok(default),
            }
        };
        let database_url = var("DATABASE_URL")
            .ok_or_else(|| ConfigError("DATABASE_URL is not set. Use `cargo xtask dev`, which starts a database for you.".into()))?;
        let owner_database_url = var("DATABASE_OWNER_URL");
        let addr = var("TESSERA_ADDR").or_else(|| var("LEPTOS_SITE_ADDR")).unwrap_or_else(|| "127.0.0.1:3000".into());
        let addr = addr.parse().map_err(|e| ConfigError(format!("TESSERA_ADDR {addr:?} is not host:port ({e})")))?;

        // Regions default to one called "local" on the control-plane database.
        let regions = match var("TESSERA_REGIONS") {
            Some(v) => named_urls("TESSERA_REGIONS", &v)?,
            None => vec![(RegionName::parse("local").expect("valid"), database_url.clone())],
        };
        let dedicated = named_urls("TESSERA_REGION_DEDICATED_URLS", &var("TESSERA_REGION_DEDICATED_URLS").unwrap_or_default())?;
        let dedicated_owners = named_urls("TESSERA_REGION_DEDICATED_OWNER_URLS", &var("TESSERA_REGION_DEDICATED_OWNER_URLS").unwrap_or_default())?;
        for (var_name, list) in [("TESSERA_REGION_DEDICATED_URLS", &dedicated), ("TESSERA_REGION_DEDICATED_OWNER_URLS", &dedicated_owners)] {
            if let Some((unknown, _)) = list.iter().find(|(n, _)| !regions.iter().any(|(r, _)| r == n)) {
                return Err(ConfigError(format!("{var_name} names region {unknown:?}, which TESSERA_REGIONS doesn't list")));
            }
        }
        let owners = match var("TESSERA_REGION_OWNER_URLS") {
            Some(v) => named_urls("TESSERA_REGION_OWNER_URLS", &v)?,
            None => owner_database_url.iter().map(|u| (regions[0].0.clone(), u.clone())).collect(),
        };
        if let Some((unknown, _)) = owners.iter().find(|(n, _)| !regions.iter().any(|(r, _)| r == n)) {
            return Err(ConfigError(format!("TESSERA_REGION_OWNER_URLS names region {unknown:?}, which TESSERA_REGIONS doesn't list")));
        }
        let models = match var("TESSERA_TENANT_MODELS") {
            Some(v) => v
                .split(',')
                .map(|m| TenancyModel::parse(m).map_err(|e| ConfigError(format!("TESSERA_TENANT_MODELS: {}", e.message))))
                .collect::<Result<Vec<_>, _>>()?,
            None => TenancyModel::ALL.to_vec(),
        };
        let pgbouncer = flag("TESSERA_PGBOUNCER");
        let topology = TopologyConfig {
            regions: regions
                .into_iter()
                .map(|(name, app_url)| {
                    let find = |list: &[(RegionName, String)]| list.iter().find(|(n, _)| *n == name).map(|(_, u)| u.clone());
                    RegionConfig {
                        owner_url: find(&owners),
                        dedicated_app_url: find(&dedicated),
                        dedicated_owner_url: find(&dedicated_owners),
                        name,
                        app_url,
                    }
                })
                .collect(),
            models,
            region_pool_size: number("TESSERA_REGION_POOL_SIZE", 10)? as u32,
            dedicated_pool_size: number("TESSERA_DEDICATED_POOL_SIZE", 3)? as u32,
            dedicated_pools_max: number("TESSERA_DEDICATED_POOLS_MAX", 50)? as usize,
            acquire_timeout: Duration::from_millis(number("TESSERA_TENANT_DB_TIMEOUT_MS", 5000)?),
            statement_timeout: Duration::from_millis(number("TESSERA_TENANT_STATEMENT_TIMEOUT_MS", 15000)?),
            pgbouncer,
            dedicated_tenants_max: number("TESSERA_DEDICATED_TENANTS_MAX", 100)?,
        };
        if var("TESSERA_MAINTENANCE_INTERVAL_SECS").is_some() {
            // Gone since housekeeping became scheduled jobs; say so rather than ignore it.
            eprintln!(
                "tessera-server: TESSERA_MAINTENANCE_INTERVAL_SECS is no longer read: housekeeping runs as scheduled jobs on the job workers (TESSERA_JOB_WORKERS)"
            );
        }
        let data_dir = std::path::PathBuf::from(var("TESSERA_DATA_DIR").unwrap_or_else(|| "data".into()));
        let from = var("TESSERA_EMAIL_FROM").unwrap_or_else(|| "Tessera <no-reply@tessera.localhost>".into());
        let email = match (var("TESSERA_RESEND_API_KEY"), var("TESSERA_SMTP_URL")) {
            (Some(api_key), _) => {
                EmailConfig::Resend { api_key, endpoint: var("TESSERA_RESEND_URL").unwrap_or_else(|| "https://api.resend.com/emails".into()), from }
            }
            (None, Some(url)) => EmailConfig::Smtp { url, from },
            (None, None) => EmailConfig::Files { dir: data_dir.join("mail"), from },
        };
        let public_url = var("TESSERA_PUBLIC_URL").unwrap_or_else(|| format!("http://{addr}"));
        let secret_key = secret_key(var("TESSERA_SECRET_KEY"), &public_url, &data_dir)?;
        Ok(Self {
            database_url,
            owner_database_url,
            topology,
            addr,
            site_root: var("LEPTOS_SITE_ROOT").unwrap_or_else(|| "target/site".into()),
            secure_cookies: flag("TESSERA_SECURE_COOKIES"),
            seed_demo: flag("TESSERA_SEED_DEMO"),
            sso_private_metadata_hosts: flag("TESSERA_SSO_PRIVATE_METADATA_HOSTS"),
            webhook_private_hosts: flag("TESSERA_WEBHOOK_PRIVATE_HOSTS"),
            webhook_disable_after: Duration::from_secs(number("TESSERA_WEBHOOK_DISABLE_AFTER_SECS", 5 * 86_400)?),
            db_max_connections: number("TESSERA_DB_MAX_CONNECTIONS", 20)? as u32,
            deletion_retention: Duration::from_secs(number("TESSERA_DELETION_RETENTION_DAYS", 30)? * 86_400),
            jobs: tessera_backend::jobs::WorkerConfig {
                workers: number("TESSERA_JOB_WORKERS", 4)? as usize,
                poll_interval: Duration::from_millis(number("TESSERA_JOB_POLL_MS", 500)?.max(10)),
                lease: Duration::from_secs(number("TESSERA_JOB_LEASE_SECS", 60)?.max(1)),
                // Inside the 30 s an orchestrator usually gives before it kills the process.
                shutdown_grace: Duration::from_secs(number("TESSERA_JOB_SHUTDOWN_GRACE_SECS", 20)?),
                schedules: true,
            },
            email,
            public_url,
            secret_key,
            reauth_window: Duration::from_secs(number("TESSERA_REAUTH_WINDOW_SECS", 600)?),
            access_token_lifetime: Duration::from_secs(number("TESSERA_ACCESS_TOKEN_TTL_SECS", 900)?),
            refresh_token_lifetime: Duration::from_secs(number("TESSERA_REFRESH_TOKEN_TTL_DAYS", 30)? * 86_400),
            refresh_reuse_overlap: Duration::from_secs(number("TESSERA_REFRESH_REUSE_OVERLAP_SECS", 10)?),
            trusted_proxies: var("TESSERA_TRUSTED_PROXIES")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| {
                    p.parse::<ipnet::IpNet>()
                        .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                        .map_err(|_| ConfigError(format!("TESSERA_TRUSTED_PROXIES: {p:?} is not an address or CIDR range")))
                })
                .collect::<Result<Vec<_>, _>>()?,
            dns_server: match var("TESSERA_DNS_SERVER") {
                Some(v) => Some(v.trim().parse().map_err(|_| ConfigError(format!("TESSERA_DNS_SERVER {v:?} is not ip:port")))?),
                None => None,
            },
            oidc_providers: match var("TESSERA_OIDC_PROVIDERS") {
                Some(json) => oidc_providers(&json)?,
                None => Vec::new(),
            },
            rate_limits: {
                let default = tessera_backend::rate_limit::Budgets::default();
                let per_minute = |name: &str, default: u32| -> Result<u32, ConfigError> {
                    u32::try_from(number(name, u64::from(default))?).map_err(|_| ConfigError(format!("{name} is too large")))
                };
                tessera_backend::rate_limit::Budgets {
                    per_address: per_minute("TESSERA_RATE_LIMIT_PER_ADDRESS", default.per_address)?,
                    per_user: per_minute("TESSERA_RATE_LIMIT_PER_USER", default.per_user)?,
                    per_organization: per_minute("TESSERA_RATE_LIMIT_PER_ORGANIZATION", default.per_organization)?,
                    per_api_key: per_minute("TESSERA_RATE_LIMIT_PER_API_KEY", default.per_api_key)?,
                }
            },
            redis_url: var("TESSERA_REDIS_URL"),
            billing: tessera_backend::billing::BillingConfig {
                secret_key: var("TESSERA_STRIPE_SECRET_KEY"),
                api_base: var("TESSERA_STRIPE_API_BASE"),
                webhook_secrets: var("TESSERA_STRIPE_WEBHOOK_SECRET")
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect(),
                plans_file: var("TESSERA_BILLING_PLANS").map(std::path::PathBuf::from),
                policy: tessera_domain::billing::Policy {
                    grace_days: number("TESSERA_BILLING_GRACE_DAYS", 7)? as i64,
                    retention_days: number("TESSERA_BILLING_RETENTION_DAYS", 90)? as i64,
                },
                test_clocks: flag("TESSERA_STRIPE_TEST_CLOCKS"),
            },
        })
    }
}

/// `[{"id": "google", "name": "Google", "issuer": "https://accounts.google.com", "client_id": "…", "client_secret": "…"},
///   {"id": "github", "name": "GitHub", "kind": "github", "client_id": "…", "client_secret": "…"}]`
fn oidc_providers(json: &str) -> Result<Vec<tessera_backend::identity::oidc::ProviderConfig>, ConfigError> {
    let providers: Vec<tessera_backend::identity::oidc::ProviderConfig> = serde_json::from_str(json)
        .map_err(|e| ConfigError(format!("TESSERA_OIDC_PROVIDERS must be a JSON list of {{id, name, issuer, client_id, client_secret}} (GitHub: {{id, name, \"kind\": \"github\", client_id, client_secret}}): {e}")))?;
    for p in &providers {
        if p.id.is_empty() || !p.id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err(ConfigError(format!("TESSERA_OIDC_PROVIDERS: id {:?} must be lowercase letters, digits and hyphens", p.id)));
        }
        if let Some(problem) = p.problem() {
            return Err(ConfigError(format!("TESSERA_OIDC_PROVIDERS: {problem}")));
        }
        if providers.iter().filter(|q| q.id == p.id).count() > 1 {
            return Err(ConfigError(format!("TESSERA_OIDC_PROVIDERS: id {:?} is listed twice", p.id)));
        }
    }
    Ok(providers)
}

/// The configured master secret. Without one, a deployment served over https (production) is
/// refused: a generated key lives on one machine's disk, so tokens and sealed secrets would
/// break on the next server or the next fresh disk, and nothing in git may be the fallback.
fn secret_key(configured: Option<String>, public_url: &str, data_dir: &std::path::Path) -> Result<String, ConfigError> {
    match configured {
        Some(key) => Ok(key),
        None if crate::middleware::is_https(public_url) => Err(ConfigError(
            "TESSERA_SECRET_KEY must be set when TESSERA_PUBLIC_URL is https (a production deployment): give every server the same \
             random value of 32 characters or more, e.g. from `openssl rand -base64 48`"
                .into(),
        )),
        None => secret_key_file(&data_dir.join("secret.key")),
    }
}

/// The embedded set-up's key: made once, then reused, so sealed secrets and issued tokens
/// survive restarts. Production sets `TESSERA_SECRET_KEY` (the same on every server).
fn secret_key_file(path: &std::path::Path) -> Result<String, ConfigError> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        return Ok(existing.trim().to_string());
    }
    let key = tessera_backend::secrets::SecretKey::generate();
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        std::io::Write::write_all(&mut options.open(path)?, key.as_bytes())
    };
    write().map_err(|e| ConfigError(format!("TESSERA_SECRET_KEY is not set and {} could not be written: {e}", path.display())))?;
    tracing::warn!(path = %path.display(), "TESSERA_SECRET_KEY is not set; generated a key into the data folder (set it in production)");
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::{oidc_providers, secret_key};

    #[test]
    fn production_refuses_to_start_without_a_configured_key_and_development_makes_one_outside_git() {
        let dir = std::env::temp_dir().join(format!("tessera-key-{}", std::process::id()));
        let refused = secret_key(None, "https://app.example.com", &dir).unwrap_err().0;
        assert!(refused.contains("TESSERA_SECRET_KEY must be set"), "{refused}");
        assert!(!dir.exists(), "no key was generated for production");
        assert_eq!(secret_key(Some("k".repeat(40)), "https://app.example.com", &dir).unwrap(), "k".repeat(40));
        let made = secret_key(None, "http://127.0.0.1:3000", &dir).unwrap();
        assert!(made.len() >= 32);
        assert_eq!(secret_key(None, "http://127.0.0.1:3000", &dir).unwrap(), made, "the same key on the next start");
        std::fs::remove_dir_all(&dir).unwrap();
        // The data folder is not source: git ignores it, and no key is tracked.
        let gitignore = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../.gitignore")).unwrap();
        assert!(gitignore.lines().any(|l| l.trim() == "/data"), ".gitignore lists /data");
    }

    fn refused(json: &str) -> String {
        oidc_providers(json).expect_err(json).0
    }

    #[test]
    fn outside_providers_are_read_with_their_kind() {
        let providers = oidc_providers(
            r#"[{"id": "google", "name": "Google", "issuer": "https://accounts.google.com", "client_id": "a", "client_secret": "b"},
                {"id": "github", "name": "GitHub", "kind": "github", "client_id": "c", "client_secret": "d"},
                {"id": "ghe", "name": "GitHub at Acme", "kind": "github", "server_url": "https://github.acme.test", "client_id": "e", "client_secret": "f"}]"#,
        )
        .unwrap();
        let kinds: Vec<_> = providers.iter().map(|p| format!("{:?}", p.kind)).collect();
        assert_eq!(kinds, ["Oidc", "Github", "Github"]);
    }

    #[test]
    fn a_mistyped_provider_is_refused_with_what_to_change() {
        assert!(refused(r#"[{"id": "okta", "name": "Okta", "client_id": "a", "client_secret": "b"}]"#).contains("needs an \"issuer\""));
        assert!(refused(
            r#"[{"id": "gh", "name": "GitHub", "kind": "github", "issuer": "https://github.com", "client_id": "a", "client_secret": "b"}]"#
        )
        .contains("GitHub has no issuer"));
        assert!(refused(r#"[{"id": "gh", "name": "GitHub", "kind": "gitlab", "client_id": "a", "client_secret": "b"}]"#).contains("unknown variant"));
        assert!(refused(r#"[{"id": "g", "name": "G", "issuer": "https://g.test", "client_id": "a", "client_secret": "b", "secret": "c"}]"#)
            .contains("unknown field"));
        assert!(refused(r#"[{"id": "G!", "name": "G", "issuer": "https://g.test", "client_id": "a", "client_secret": "b"}]"#).contains("lowercase"));
        // Secrets and codes travel to these addresses: https, unless it is this machine.
        assert!(refused(
            r#"[{"id": "ghe", "name": "GHE", "kind": "github", "server_url": "http://github.acme.test", "client_id": "a", "client_secret": "b"}]"#
        )
        .contains("must be an https URL"));
        assert!(refused(r#"[{"id": "g", "name": "G", "issuer": "http://idp.acme.test", "client_id": "a", "client_secret": "b"}]"#).contains("https"));
        assert!(oidc_providers(r#"[{"id": "g", "name": "G", "issuer": "http://127.0.0.1:4000", "client_id": "a", "client_secret": "b"}]"#).is_ok());
    }
}
