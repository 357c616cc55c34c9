//! The demo organizations for `cargo xtask dev`: one user per role, a few projects, one
//! organization per tenancy model. It goes
//! through the same services as the UI, so the seed is audited like any other change.

use crate::identity::{AddressProof, Confirmation, SignedUp};
use crate::{members, projects, Backend, Error, RequestMeta, Result};
use tessera_domain::placement::TenancyModel;
use tessera_domain::{AppError, Role};

pub const DEMO_SLUG: &str = "acme";
pub const DEMO_PASSWORD: &str = "tessera-demo";
pub const DEMO_USERS: [(&str, Role); 4] =
    [("owner@acme.test", Role::Owner), ("admin@acme.test", Role::Admin), ("member@acme.test", Role::Member), ("viewer@acme.test", Role::Viewer)];

/// Creates the demo data unless it is already there.
pub async fn demo(backend: &Backend) -> Result<()> {
    let mut ids = Vec::new();
    for (email, role) in DEMO_USERS {
        let name = format!("Demo {}", role.label());
        let signed_up = backend.identity.sign_up(email, DEMO_PASSWORD, &name, AddressProof::Proven, &RequestMeta::default()).await;
        let user = match signed_up {
            Ok(SignedUp::Confirmed(user) | SignedUp::AwaitingConfirmation(user)) => user,
            Ok(SignedUp::AlreadyRegistered) | Err(Error::App(AppError::Conflict(_))) => {
                backend.identity.check_password(email, DEMO_PASSWORD, Confirmation::NotRequired, &RequestMeta::default()).await?
            }
            Err(e) => return Err(e),
        };
        backend.identity.confirm_email_directly(user.id).await?;
        ids.push((user.id, role));
    }
    let owner = ids[0].0;
    let meta = RequestMeta { request_id: Some("seed".into()), ..Default::default() };
    let options = backend.tenancy.placement_options().await?;
    let last_region = options.regions.last().cloned().unwrap_or_default();
    // One organization per model (where this deployment offers it), so all three can be seen
    // and benchmarked side by side; the dedicated one lives in the last configured region.
    let orgs = [
        ("Acme Corporation", DEMO_SLUG, TenancyModel::Pooled, options.default_region.clone()),
        ("Globex", "globex", TenancyModel::Schema, options.default_region.clone()),
        ("Initech", "initech", TenancyModel::Dedicated, last_region),
    ];
    for (name, slug, model, region) in orgs {
        if backend.tenancy.topology().check_offer(model, &region).is_err() {
            continue;
        }
        let ctx = match backend.tenancy.create_tenant(owner, name, slug, &region, model.as_str(), meta.clone()).await {
            Ok(ctx) => ctx,
            Err(Error::App(AppError::Conflict(_))) => continue, // seeded before
            Err(e) => return Err(e),
        };
        for (email, role) in DEMO_USERS.iter().skip(1) {
            members::add(&ctx, &backend.identity, email, *role).await?;
        }
        for (name, description) in [
            ("Website relaunch", "New marketing site with the 2027 brand."),
            ("Customer portal", "Self-service billing and support for enterprise customers."),
            ("Data warehouse", "Nightly exports into the analytics warehouse."),
        ] {
            projects::create(&ctx, projects::ProjectDraft::parse(name, description)?).await?;
        }
    }
    Ok(())
}
