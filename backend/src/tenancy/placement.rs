//! Where one tenant's data lives, as recorded in the control plane's `tenants` row.

use tessera_domain::placement::TenancyModel;
use uuid::Uuid;

/// The schema pooled tenants share in every region database.
pub const SHARED_SCHEMA: &str = "shared";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub model: TenancyModel,
    pub region: String,
    /// Set for dedicated tenants: their own database on the region's cluster.
    pub database: Option<String>,
    /// `shared` for pooled tenants, `t_<id>` otherwise (also inside a dedicated database, so
    /// moving between the schema and dedicated models copies between identical layouts).
    pub schema: String,
}

impl Placement {
    /// The placement a tenant gets in `model` and `region`; names derive from its id.
    pub fn new(tenant_id: Uuid, model: TenancyModel, region: &str) -> Self {
        let own_schema = format!("t_{}", tenant_id.simple());
        let (database, schema) = match model {
            TenancyModel::Pooled => (None, SHARED_SCHEMA.to_string()),
            TenancyModel::Schema => (None, own_schema),
            TenancyModel::Dedicated => (Some(format!("tessera_t_{}", tenant_id.simple())), own_schema),
        };
        Placement { model, region: region.to_string(), database, schema }
    }

    pub(crate) fn from_row(model: &str, region: String, database: Option<String>, schema: String) -> crate::Result<Self> {
        let model = TenancyModel::parse(model).map_err(|e| crate::Error::Internal(format!("tenants.model: {}", e.message)))?;
        Ok(Placement { model, region, database, schema })
    }

    /// A short description for logs, audit records and the CLI.
    pub fn describe(&self) -> String {
        match &self.database {
            Some(db) => format!("{} in {} (database {db})", self.model, self.region),
            None => format!("{} in {} (schema {})", self.model, self.region, self.schema),
        }
    }
}
