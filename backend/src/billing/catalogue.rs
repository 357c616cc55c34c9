//! The plan catalogue: `billing/plans.toml` in the repository (compiled in), or the file
//! `TESSERA_BILLING_PLANS` names, so a fork changes its prices without touching code.

use crate::error::{Error, Result};
use tessera_domain::billing::Catalogue;

/// The catalogue Tessera ships with.
pub const SHIPPED: &str = include_str!("../../../billing/plans.toml");

/// Parses and checks a catalogue; the error names the file's problem and where it is.
pub fn parse(text: &str, origin: &str) -> Result<Catalogue> {
    let catalogue: Catalogue = toml::from_str(text).map_err(|e| Error::Internal(format!("{origin}: {e}")))?;
    catalogue.validate().map_err(|e| Error::Internal(format!("{origin}: {e}")))?;
    Ok(catalogue)
}

/// The shipped catalogue, or the one at `path`.
pub fn load(path: Option<&std::path::Path>) -> Result<Catalogue> {
    match path {
        None => parse(SHIPPED, "billing/plans.toml"),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| Error::Internal(format!("{}: {e}", path.display())))?;
            parse(&text, &path.display().to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_domain::billing::{Feature, Interval};

    #[test]
    fn the_shipped_catalogue_has_a_free_tier_and_two_paid_plans_with_every_kind_of_price() {
        let catalogue = load(None).unwrap();
        assert_eq!(catalogue.free_plan().key, "free");
        let paid: Vec<_> = catalogue.plans.iter().filter(|p| !p.free).collect();
        assert!(paid.len() >= 2);
        for plan in paid {
            assert!(plan.monthly_flat > 0 && plan.monthly_per_seat > 0 && plan.per_thousand_api_calls > 0, "{}", plan.key);
            assert!(plan.annual_flat < 12 * plan.monthly_flat, "{}: the annual price is a discount", plan.key);
            assert!(plan.trial_days > 0);
        }
        assert!(catalogue.plan("business").unwrap().entitlements.has(Feature::SingleSignOn));
        assert!(!catalogue.free_plan().entitlements.has(Feature::Webhooks));
        assert_eq!(Interval::parse("year"), Some(Interval::Year));
    }

    #[test]
    fn a_broken_catalogue_is_refused_with_where_it_is_broken() {
        let error = parse(&SHIPPED.replace("rank = 2", "rank = 1"), "plans.toml").unwrap_err().to_string();
        assert!(error.contains("plans.toml") && error.contains("rank 1"), "{error}");
        let error = parse("currency = 3", "plans.toml").unwrap_err().to_string();
        assert!(error.contains("plans.toml"), "{error}");
    }
}
