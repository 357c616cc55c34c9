//! Where a tenant's data lives: its isolation model and its region. Parsed here so onboarding
//! in the browser and the server reject the same input with the same message.

use crate::input::FieldError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// How a tenant's data is isolated from other tenants'.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TenancyModel {
    /// Shared tables; row-level security keeps tenants apart. Cheapest; the default.
    Pooled,
    /// The tenant's own schema (tables identical to the shared ones), RLS as a second wall.
    Schema,
    /// The tenant's own database, on its region's cluster.
    Dedicated,
}

impl TenancyModel {
    pub const ALL: [TenancyModel; 3] = [TenancyModel::Pooled, TenancyModel::Schema, TenancyModel::Dedicated];

    pub fn as_str(self) -> &'static str {
        match self {
            TenancyModel::Pooled => "pooled",
            TenancyModel::Schema => "schema",
            TenancyModel::Dedicated => "dedicated",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            TenancyModel::Pooled => "Shared database",
            TenancyModel::Schema => "Own schema",
            TenancyModel::Dedicated => "Dedicated database",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            TenancyModel::Pooled => "Your data sits in shared tables, kept apart by row-level security.",
            TenancyModel::Schema => "Your data gets its own set of tables in the region's database.",
            TenancyModel::Dedicated => "Your data gets a database of its own, for the strictest isolation.",
        }
    }

    pub fn parse(input: &str) -> Result<Self, FieldError> {
        match input.trim().to_ascii_lowercase().as_str() {
            "" | "pooled" => Ok(TenancyModel::Pooled),
            "schema" => Ok(TenancyModel::Schema),
            "dedicated" => Ok(TenancyModel::Dedicated),
            other => Err(FieldError::new("model", format!("\"{other}\" is not a data isolation option. Choose pooled, schema or dedicated."))),
        }
    }
}

impl fmt::Display for TenancyModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A region name as configured by the operator (`eu`, `us-east`, ...).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RegionName(String);

impl RegionName {
    /// Checks the shape only; whether the region exists is the server's configuration's call.
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let name = input.trim().to_ascii_lowercase();
        let valid = (2..=31).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if valid {
            Ok(RegionName(name))
        } else {
            Err(FieldError::new("region", format!("\"{}\" is not a region name.", input.trim())))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RegionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What onboarding may offer: the configured regions and the models this deployment allows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementOptions {
    pub regions: Vec<String>,
    pub default_region: String,
    pub models: Vec<TenancyModel>,
}

/// Where an organization's data lives, as its admins see it in settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementInfo {
    pub region: String,
    pub model: TenancyModel,
    pub schema_version: i64,
    pub status: String,
    /// When the organization will be deleted, if deletion has been scheduled (RFC 3339).
    pub delete_after: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_parse_case_insensitively_and_default_to_pooled() {
        assert_eq!(TenancyModel::parse(" Dedicated "), Ok(TenancyModel::Dedicated));
        assert_eq!(TenancyModel::parse(""), Ok(TenancyModel::Pooled));
        let err = TenancyModel::parse("sharded").unwrap_err();
        assert_eq!(err.field, "model");
        assert!(err.message.contains("sharded"));
    }

    #[test]
    fn region_names_are_short_lowercase_words() {
        assert_eq!(RegionName::parse("EU-west").unwrap().as_str(), "eu-west");
        for bad in ["", "e", "1eu", "eu west", "eu;drop", &"x".repeat(40)] {
            assert!(RegionName::parse(bad).is_err(), "{bad:?}");
        }
    }
}
