//! The deployment's recurring housekeeping, as jobs on schedules (it used to be a loop in each
//! server): each tick runs once across all servers, and a failure is retried and visible.

use super::{Job, RunningJob};
use crate::error::Result;
use serde::{Deserialize, Serialize};

/// Purges organizations whose deletion retention period is over.
#[derive(Serialize, Deserialize)]
pub struct PurgeDeletedOrganizations {}

impl Job for PurgeDeletedOrganizations {
    const KIND: &'static str = "tenants.purge";

    async fn run(self, job: &RunningJob) -> Result<()> {
        let purged = crate::tenancy::lifecycle::purge_due(&job.backend.tenancy).await?;
        if !purged.is_empty() {
            tracing::info!(?purged, "purged deleted organizations");
        }
        Ok(())
    }
}

/// Forgets what can no longer be used: expired sessions, links, tokens, rate-limit windows,
/// SAML requests, and old finished jobs.
#[derive(Serialize, Deserialize)]
pub struct PruneExpired {}

impl Job for PruneExpired {
    const KIND: &'static str = "housekeeping.prune";

    async fn run(self, job: &RunningJob) -> Result<()> {
        let backend = &job.backend;
        backend.sessions.delete_expired().await?;
        backend.identity.prune_expired().await?;
        crate::sso::prune_expired(&backend.tenancy).await?;
        super::admin::prune(backend).await?;
        Ok(())
    }
}

/// Reads organizations' IdP metadata published at URLs again (certificate rollovers).
#[derive(Serialize, Deserialize)]
pub struct RefreshIdpMetadata {}

impl Job for RefreshIdpMetadata {
    const KIND: &'static str = "sso.refresh_metadata";

    async fn run(self, job: &RunningJob) -> Result<()> {
        let backend = &job.backend;
        let changed = crate::sso::refresh_metadata(&backend.tenancy, &backend.sso, &backend.identity).await?;
        if changed > 0 {
            tracing::info!(changed, "refreshed IdP metadata published at URLs");
        }
        Ok(())
    }
}

crate::register_job!(PurgeDeletedOrganizations);
crate::register_job!(PruneExpired);
crate::register_job!(RefreshIdpMetadata);
crate::register_schedule!("tenants.purge", "*/10 * * * *", PurgeDeletedOrganizations {});
crate::register_schedule!("housekeeping.prune", "5-59/10 * * * *", PruneExpired {});
// Each organization's metadata is read again once a day (sso::refresh_metadata decides
// which are due); looking every ten minutes spreads them out.
crate::register_schedule!("sso.refresh_metadata", "7-59/10 * * * *", RefreshIdpMetadata {});
