//! The places tenant data can live, and the connection pools that reach them.
//!
//! Each region is one PostgreSQL cluster. Its *region database* holds the `shared` schema
//! (pooled tenants) and one `t_<id>` schema per schema tenant; each dedicated tenant gets its
//! own database on the same cluster. Region pools open lazily, so a region that is down at
//! start-up only affects its own tenants. Dedicated pools open on first use, are small, and
//! are capped in number: the least recently used one is closed when a new one is needed.

use super::placement::Placement;
use crate::error::{Error, Result};
use lru::LruCache;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::num::NonZeroUsize;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;
use tessera_domain::placement::{PlacementOptions, RegionName, TenancyModel};
use tessera_domain::AppError;

/// One configured region.
#[derive(Clone, Debug)]
pub struct RegionConfig {
    pub name: RegionName,
    /// The region database, as the confined app role.
    pub app_url: String,
    /// The same cluster as the owner role: needed to create and drop tenant schemas and
    /// databases and to migrate them. Without it only pooled tenants can be created here.
    pub owner_url: Option<String>,
    /// Where this region's dedicated databases live, when not on the region's own cluster:
    /// any database on that cluster as the app role (the name is replaced per tenant) ...
    pub dedicated_app_url: Option<String>,
    /// ... and as the owner role (used to create and drop the databases).
    pub dedicated_owner_url: Option<String>,
}

/// How tenant data is laid out and reached. The first region is the default.
#[derive(Clone, Debug)]
pub struct TopologyConfig {
    pub regions: Vec<RegionConfig>,
    /// The models onboarding may offer (plans will narrow this per tenant).
    pub models: Vec<TenancyModel>,
    pub region_pool_size: u32,
    pub dedicated_pool_size: u32,
    /// At most this many dedicated databases have open pools at once.
    pub dedicated_pools_max: usize,
    /// How long a request waits for a tenant database connection before answering 503.
    pub acquire_timeout: Duration,
    /// The longest one statement in a tenant transaction may run (or wait for a lock): a slow
    /// tenant database then costs its own requests a 503, not every request a stuck connection.
    pub statement_timeout: Duration,
    /// Connections go through PgBouncer in transaction mode: no server-side statement cache.
    pub pgbouncer: bool,
    /// At most this many organizations may have a database of their own (each is a `CREATE
    /// DATABASE` on a region's cluster); past it, onboarding offers the other models.
    pub dedicated_tenants_max: u64,
}

impl TopologyConfig {
    /// One region called `name` on the control-plane database: the single-cluster default.
    pub fn single(name: &str, app_url: &str, owner_url: Option<&str>) -> Self {
        TopologyConfig {
            regions: vec![RegionConfig {
                name: RegionName::parse(name).expect("a valid region name"),
                app_url: app_url.to_string(),
                owner_url: owner_url.map(str::to_string),
                dedicated_app_url: None,
                dedicated_owner_url: None,
            }],
            models: TenancyModel::ALL.to_vec(),
            region_pool_size: 10,
            dedicated_pool_size: 3,
            dedicated_pools_max: 50,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(15),
            pgbouncer: false,
            dedicated_tenants_max: 100,
        }
    }
}

pub(crate) struct Region {
    pub name: RegionName,
    pub owner: Option<PgConnectOptions>,
    pub pool: PgPool,
    /// The cluster holding this region's dedicated databases (by default the region's own).
    pub dedicated_app: PgConnectOptions,
    pub dedicated_owner: Option<PgConnectOptions>,
}

pub struct Topology {
    regions: Vec<Region>,
    models: Vec<TenancyModel>,
    dedicated: Mutex<LruCache<(String, String), PgPool>>,
    dedicated_pool_size: u32,
    acquire_timeout: Duration,
    statement_timeout: Duration,
    dedicated_tenants_max: u64,
}

/// Parses a connection URL, switching off the server-side statement cache behind PgBouncer
/// (transaction pooling hands each transaction a different server connection).
pub fn connect_options(url: &str, pgbouncer: bool) -> Result<PgConnectOptions> {
    let options = PgConnectOptions::from_str(url).map_err(|e| Error::Internal(format!("bad database URL: {e}")))?;
    Ok(if pgbouncer { options.statement_cache_capacity(0) } else { options })
}

impl Topology {
    pub fn new(config: &TopologyConfig) -> Result<Self> {
        if config.regions.is_empty() {
            return Err(Error::Internal("no region is configured".into()));
        }
        let mut regions = Vec::new();
        for r in &config.regions {
            if regions.iter().any(|x: &Region| x.name == r.name) {
                return Err(Error::Internal(format!("region \"{}\" is configured twice", r.name)));
            }
            let app = connect_options(&r.app_url, config.pgbouncer)?;
            let pool = crate::db::pool_options()
                .max_connections(config.region_pool_size)
                .acquire_timeout(config.acquire_timeout)
                .connect_lazy_with(app.clone());
            let owner = r.owner_url.as_deref().map(|u| connect_options(u, false)).transpose()?;
            let dedicated_app = match &r.dedicated_app_url {
                Some(url) => connect_options(url, config.pgbouncer)?,
                None => app.clone(),
            };
            let dedicated_owner = match &r.dedicated_owner_url {
                Some(url) => Some(connect_options(url, false)?),
                None => owner.clone(),
            };
            regions.push(Region { name: r.name.clone(), owner, pool, dedicated_app, dedicated_owner });
        }
        let cap = NonZeroUsize::new(config.dedicated_pools_max.max(1)).expect("at least one");
        Ok(Topology {
            regions,
            models: config.models.clone(),
            dedicated: Mutex::new(LruCache::new(cap)),
            dedicated_pool_size: config.dedicated_pool_size.max(1),
            acquire_timeout: config.acquire_timeout,
            statement_timeout: config.statement_timeout,
            dedicated_tenants_max: config.dedicated_tenants_max,
        })
    }

    pub fn dedicated_tenants_max(&self) -> u64 {
        self.dedicated_tenants_max
    }

    pub fn acquire_timeout(&self) -> Duration {
        self.acquire_timeout
    }

    pub fn statement_timeout(&self) -> Duration {
        self.statement_timeout
    }

    pub fn default_region(&self) -> &RegionName {
        &self.regions[0].name
    }

    pub fn options(&self) -> PlacementOptions {
        PlacementOptions {
            regions: self.regions.iter().map(|r| r.name.to_string()).collect(),
            default_region: self.default_region().to_string(),
            models: self.models.clone(),
        }
    }

    pub(crate) fn regions(&self) -> impl Iterator<Item = &Region> {
        self.regions.iter()
    }

    /// A region by name; an unknown one is the user's mistake (onboarding, moves).
    pub(crate) fn region(&self, name: &str) -> Result<&Region> {
        self.regions.iter().find(|r| r.name.as_str() == name).ok_or_else(|| {
            let known: Vec<&str> = self.regions.iter().map(|r| r.name.as_str()).collect();
            AppError::Invalid(tessera_domain::input::FieldError::new(
                "region",
                format!("We don't keep data in a region called \"{name}\". Choose one of: {}.", known.join(", ")),
            ))
            .into()
        })
    }

    /// Checks a requested model and region against what this deployment offers.
    pub(crate) fn check_offer(&self, model: TenancyModel, region: &str) -> Result<()> {
        let region = self.region(region)?;
        if !self.models.contains(&model) {
            return Err(AppError::Invalid(tessera_domain::input::FieldError::new(
                "model",
                format!("{} isn't offered here. Choose another data isolation option.", model.label()),
            ))
            .into());
        }
        let owner = if model == TenancyModel::Dedicated { &region.dedicated_owner } else { &region.owner };
        if model != TenancyModel::Pooled && owner.is_none() {
            return Err(AppError::Invalid(tessera_domain::input::FieldError::new(
                "model",
                format!("Region {} can't host a {} yet. Choose the shared database.", region.name, model.label().to_lowercase()),
            ))
            .into());
        }
        Ok(())
    }

    /// The pool that reaches a tenant's data. For dedicated tenants this may open a pool (and
    /// close the least recently used one when the cap is reached).
    pub(super) fn pool_for(&self, placement: &Placement) -> Result<PgPool> {
        let region = self.regions.iter().find(|r| r.name.as_str() == placement.region).ok_or_else(|| {
            AppError::Unavailable(format!(
                "This organization's data is in region \"{}\", which this server isn't connected to. Please contact support.",
                placement.region
            ))
        })?;
        let Some(database) = &placement.database else {
            return Ok(region.pool.clone());
        };
        let key = (placement.region.clone(), database.clone());
        let mut cache = self.dedicated.lock().expect("pool cache lock");
        if let Some(pool) = cache.get(&key) {
            return Ok(pool.clone());
        }
        let pool = crate::db::pool_options()
            .max_connections(self.dedicated_pool_size)
            .min_connections(0)
            .acquire_timeout(self.acquire_timeout)
            .idle_timeout(Duration::from_secs(300))
            .connect_lazy_with(region.dedicated_app.clone().database(database));
        // The evicted handle is dropped, not closed: requests still holding it finish normally,
        // and its connections go when the last of them is done.
        if let Some((evicted, _old)) = cache.push(key, pool.clone()) {
            tracing::debug!(region = %evicted.0, database = %evicted.1, "dropping the least recently used dedicated pool");
        }
        Ok(pool)
    }

    /// Forgets the pool of a dedicated database (before it is dropped or after a move).
    pub(crate) fn forget_dedicated(&self, region: &str, database: &str) {
        self.dedicated.lock().expect("pool cache lock").pop(&(region.to_string(), database.to_string()));
    }

    /// Applies the start-up guard on the app role to every region (and each region's dedicated
    /// cluster): a superuser or BYPASSRLS role there would see through row-level security. A
    /// region that can't be reached is only logged, so one region's outage doesn't keep the
    /// others from being served; it is checked again the next time the server starts.
    pub async fn check_app_roles(&self) -> Result<()> {
        for region in &self.regions {
            let dedicated = PgPoolOptions::new().max_connections(1).connect_lazy_with(region.dedicated_app.clone());
            for (what, pool) in [("shared", &region.pool), ("dedicated", &dedicated)] {
                match tokio::time::timeout(self.acquire_timeout, crate::db::check_app_role(pool)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(Error::Internal(refusal))) => {
                        return Err(Error::Internal(format!("region {} ({what} databases): {refusal}", region.name)))
                    }
                    Ok(Err(e)) => tracing::warn!(region = %region.name, what, error = %e, "could not check the app role; region unreachable?"),
                    Err(_) => tracing::warn!(region = %region.name, what, "could not check the app role in time; region unreachable?"),
                }
            }
        }
        Ok(())
    }

    /// How many dedicated databases currently have an open pool (for metrics and tests).
    pub fn open_dedicated_pools(&self) -> usize {
        self.dedicated.lock().expect("pool cache lock").len()
    }

    /// Owner-role connection options for a region's database, or one of its dedicated ones.
    pub(super) fn owner_options(&self, region: &str, database: Option<&str>) -> Result<PgConnectOptions> {
        let region = self.region(region)?;
        match database {
            Some(db) => Ok(dedicated_owner(region)?.database(db)),
            None => region
                .owner
                .clone()
                .ok_or_else(|| Error::Internal(format!("region {} has no owner connection configured (TESSERA_REGION_OWNER_URLS)", region.name))),
        }
    }

    /// The owner connection that creates and drops a placement's database (or schema), and
    /// whose cluster the placement is on: the dedicated cluster's for a dedicated tenant.
    pub(super) fn admin_options(&self, placement: &Placement) -> Result<PgConnectOptions> {
        let region = self.region(&placement.region)?;
        if placement.database.is_some() {
            dedicated_owner(region)
        } else {
            self.owner_options(&placement.region, None)
        }
    }
}

fn dedicated_owner(region: &Region) -> Result<PgConnectOptions> {
    region
        .dedicated_owner
        .clone()
        .ok_or_else(|| Error::Internal(format!("region {} has no owner connection for dedicated databases configured", region.name)))
}
