//! Roles and the permission matrix: the built-in roles, the organization's own (`Rights`), and
//! the permissions both are made of. The UI asks `rights.can(..)` to decide what to show; the
//! server asks the very same question (through `access::can`) before every change, so the two
//! can never disagree.

use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Member,
    Viewer,
}

/// Declares [`Permission`] from one table: for each, the least role that may do it and the API-key
/// scope that covers it (`no key` when keys can't). Roles, keys, the UI and the server all read
/// this table, so adding a resource's permissions is adding its rows here.
macro_rules! permissions {
    ($($(#[$doc:meta])* $name:ident: $least:ident, $($key:ident)+;)*) => {
        /// Everything a member can attempt inside an organization.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Permission {
            $($(#[$doc])* $name,)*
        }

        impl Permission {
            pub const ALL: &'static [Permission] = &[$(Permission::$name),*];

            /// The least role that may do this (Owner > Admin > Member > Viewer).
            pub const fn least_role(self) -> Role {
                match self {
                    $(Permission::$name => Role::$least,)*
                }
            }

            /// The API-key scope that covers this; `None`: a key never may.
            pub const fn key_scope(self) -> Option<Scope> {
                match self {
                    $(Permission::$name => permissions!(@key $($key)+),)*
                }
            }

            /// Its name in stored custom roles and on the wire (`ViewProjects`): the variant's
            /// name, so renaming a variant is a migration (stored roles would lose that right).
            pub const fn name(self) -> &'static str {
                match self {
                    $(Permission::$name => stringify!($name),)*
                }
            }
        }
    };
    (@key no key) => { None };
    (@key $resource:ident $access:ident) => { Some(Scope { resource: Resource::$resource, access: Access::$access }) };
}

permissions! {
    ViewProjects: Viewer, Projects Read;
    /// Create projects, and change or delete the ones you created.
    WriteProjects: Member, Projects Write;
    /// Change or delete anyone's project.
    ManageProjects: Admin, Projects Write;
    ViewDocuments: Viewer, Documents Read;
    /// Write documents, and change or delete the ones you wrote.
    WriteDocuments: Member, Documents Write;
    /// Change or delete anyone's document.
    ManageDocuments: Admin, Documents Write;
    ViewMembers: Viewer, Members Read;
    /// Add existing users and change roles of non-owners.
    ManageMembers: Admin, no key;
    /// Grant or take away the Owner role, and hand ownership over.
    ManageOwners: Owner, no key;
    /// Create, change and delete groups, and choose their members.
    ManageGroups: Admin, no key;
    /// Leave the organization (its last Owner can't: someone must stay in charge).
    LeaveOrganization: Viewer, no key;
    /// Read, filter and export the audit log (export and the API also need a plan with audit
    /// log export).
    ViewAudit: Admin, AuditLog Read;
    /// Choose how long the audit log is kept.
    ConfigureAuditLog: Owner, no key;
    /// See where the organization's data lives and its other settings.
    ViewSettings: Admin, no key;
    /// Schedule the organization (and all its data) for deletion, or cancel that.
    DeleteOrganization: Owner, no key;
    /// Change how members must sign in: the two-factor requirement, single sign-on. Whoever
    /// controls the IdP or the sign-in rules can sign in as anyone at the organization's
    /// domains, Owners included: so only Owners may.
    ManageSecurity: Owner, no key;
    /// Create and revoke the organization's API keys.
    ManageApiKeys: Admin, no key;
    /// Register webhook endpoints, rotate their secrets, see and resend their deliveries.
    ManageWebhooks: Admin, no key;
    /// See the plan, invoices and payment method; subscribe, change plan, cancel, resume.
    ManageBilling: Admin, no key;
    /// Define the organization's own roles (never with rights one doesn't have).
    ManageRoles: Owner, no key;
}

impl Permission {
    pub fn parse(name: &str) -> Option<Permission> {
        Permission::ALL.iter().copied().find(|p| p.name() == name.trim())
    }

    /// What every member may do, whatever their role: see what the organization shows everyone,
    /// and leave. Every custom role includes these: they are the permissions whose least role is
    /// Viewer, so a new Viewer-level permission is part of every custom role at once.
    pub fn is_baseline(self) -> bool {
        self.least_role() == Role::Viewer
    }

    /// Only Owners ever may: handing out ownership, the sign-in rules (whoever controls them
    /// can sign in as anyone), deleting the organization. No custom role can include these.
    pub fn owner_only(self) -> bool {
        matches!(self, Permission::ManageOwners | Permission::ManageSecurity | Permission::DeleteOrganization)
    }

    /// The permissions a custom role is chosen from: neither baseline nor Owner-only.
    pub fn catalogue() -> impl Iterator<Item = Permission> {
        Permission::ALL.iter().copied().filter(|p| !p.is_baseline() && !p.owner_only())
    }

    /// What it lets someone do, for the roles checklist.
    pub fn describe(self) -> &'static str {
        use Permission::*;
        match self {
            ViewProjects => "See the projects open to the organization",
            WriteProjects => "Create projects, and change or delete their own",
            ManageProjects => "See every project, restricted ones too; change, share and delete any",
            ViewDocuments => "Read the documents of the projects they see",
            WriteDocuments => "Write documents, and change or delete their own",
            ManageDocuments => "Change or delete anyone's documents",
            ViewMembers => "See the team and its groups",
            ManageMembers => "Invite people, change roles (up to their own rights), remove members",
            ManageOwners => "Make Owners and hand ownership over",
            ManageGroups => "Create groups and choose their members",
            LeaveOrganization => "Leave the organization",
            ViewAudit => "Read, filter and export the audit log",
            ConfigureAuditLog => "Choose how long the audit log is kept",
            ViewSettings => "See where the organization's data lives and its settings",
            DeleteOrganization => "Delete the organization",
            ManageSecurity => "Set sign-in rules: two-factor, single sign-on",
            ManageApiKeys => "Create and revoke API keys",
            ManageWebhooks => "Manage webhook endpoints and their deliveries",
            ManageBilling => "Manage the plan, payment method and invoices",
            ManageRoles => "Define custom roles (never with rights they don't have)",
        }
    }

    /// What it is about, to group the checklist.
    pub fn area(self) -> &'static str {
        use Permission::*;
        match self {
            ViewProjects | WriteProjects | ManageProjects => "Projects",
            ViewDocuments | WriteDocuments | ManageDocuments => "Documents",
            ViewMembers | ManageMembers | ManageOwners | ManageGroups | LeaveOrganization | ManageRoles => "Team",
            ViewAudit | ConfigureAuditLog => "Audit log",
            ViewSettings | DeleteOrganization | ManageSecurity => "Organization",
            ManageApiKeys | ManageWebhooks => "Integrations",
            ManageBilling => "Billing",
        }
    }
}

impl Serialize for Permission {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Permission {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Permission::parse(&name).ok_or_else(|| serde::de::Error::custom(format!("unknown permission \"{name}\"")))
    }
}

/// Permissions by name, skipping any this build doesn't know (a page built before a deploy
/// reading a newer server's answer, or the other way round): one unknown name mustn't break
/// every page of the organization.
pub fn known_permissions<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<Permission>, D::Error> {
    let names = Vec::<String>::deserialize(deserializer)?;
    Ok(names.iter().filter_map(|name| Permission::parse(name)).collect())
}

/// An organization's own role: a name and the permissions chosen for it (the baseline every
/// member has comes with it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomRole {
    pub id: uuid::Uuid,
    pub name: String,
    #[serde(deserialize_with = "known_permissions")]
    pub permissions: Vec<Permission>,
}

/// What a member may do in an organization: a built-in role's rights, or a custom role's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rights {
    BuiltIn(Role),
    Custom(CustomRole),
}

impl Rights {
    pub fn can(&self, permission: Permission) -> bool {
        match self {
            Rights::BuiltIn(role) => role.can(permission),
            Rights::Custom(role) => permission.is_baseline() || (!permission.owner_only() && role.permissions.contains(&permission)),
        }
    }

    pub fn label(&self) -> &str {
        match self {
            Rights::BuiltIn(role) => role.label(),
            Rights::Custom(role) => &role.name,
        }
    }

    pub fn is_owner(&self) -> bool {
        *self == Rights::BuiltIn(Role::Owner)
    }

    /// The built-in role, if it is one.
    pub fn built_in(&self) -> Option<Role> {
        match self {
            Rights::BuiltIn(role) => Some(*role),
            Rights::Custom(_) => None,
        }
    }

    /// Whether these rights include every right of `other`.
    pub fn covers(&self, other: &Rights) -> bool {
        Permission::ALL.iter().all(|p| !other.can(*p) || self.can(*p))
    }

    /// Whether someone with these rights may give `target` to someone (or take it away): the
    /// Owner role only with the right to manage Owners; any other only with the right to manage
    /// members, and only if it is no more than their own.
    pub fn may_assign(&self, target: &Rights) -> bool {
        if target.is_owner() {
            self.can(Permission::ManageOwners)
        } else {
            self.can(Permission::ManageMembers) && self.covers(target)
        }
    }

    /// The permissions of `wanted` these rights lack (a role they may not define).
    pub fn lacking<'a>(&'a self, wanted: &'a [Permission]) -> impl Iterator<Item = Permission> + 'a {
        wanted.iter().copied().filter(move |p| !self.can(*p))
    }
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Member, Role::Viewer];

    pub fn can(self, permission: Permission) -> bool {
        // Declared strongest first, so "at least" is "at most" in the derived order.
        self <= permission.least_role()
    }

    /// Whether a member with this role may give `target` to someone (or take it away).
    pub fn may_assign(self, target: Role) -> bool {
        Rights::BuiltIn(self).may_assign(&Rights::BuiltIn(target))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Viewer => "viewer",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::Owner => "Owner",
            Role::Admin => "Admin",
            Role::Member => "Member",
            Role::Viewer => "Viewer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// The kinds of tenant data that permissions and API-key scopes name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resource {
    Projects,
    Documents,
    Members,
    AuditLog,
}

impl Resource {
    /// As it appears in scope names and in the words for people.
    pub fn name(self) -> &'static str {
        match self {
            Resource::Projects => "projects",
            Resource::Documents => "documents",
            Resource::Members => "members",
            Resource::AuditLog => "audit_log",
        }
    }

    /// In words for people.
    pub fn noun(self) -> &'static str {
        match self {
            Resource::AuditLog => "the audit log",
            other => other.name(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    Read,
    Write,
}

/// What an organization API key may do: read or write one resource. A key never has a role,
/// only scopes; each permission names the scope that covers it (see [`Permission::key_scope`]),
/// and the scopes a key can be given are exactly those.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Scope {
    // Private: a scope is made only by the permission table (or parsed from its names), so no
    // code can mint one no permission names.
    resource: Resource,
    access: Access,
}

impl Scope {
    /// Every scope some permission names, in the catalogue's order.
    pub fn all() -> Vec<Scope> {
        let mut scopes: Vec<Scope> = Vec::new();
        for scope in Permission::ALL.iter().filter_map(|p| p.key_scope()) {
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        scopes
    }

    /// `projects:read`, as stored and as API clients see it.
    pub fn as_str(self) -> String {
        let access = match self.access {
            Access::Read => "read",
            Access::Write => "write",
        };
        format!("{}:{access}", self.resource.name())
    }

    /// Whether a key with this scope may do what `needed` covers. Writing includes reading: a
    /// change answers with the row it changed, so a key that may change a resource sees it.
    pub fn covers(self, needed: Scope) -> bool {
        self.resource == needed.resource && (self.access == needed.access || self.access == Access::Write)
    }

    /// A scope a key can be given, by its name (exactly as listed: lowercase).
    pub fn parse(s: &str) -> Option<Scope> {
        Scope::all().into_iter().find(|scope| scope.as_str() == s.trim())
    }

    pub fn description(self) -> String {
        match self.access {
            Access::Read => format!("List and read {}", self.resource.noun()),
            Access::Write => format!("Read, create, change and delete {}", self.resource.noun()),
        }
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.as_str())
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Scope::parse(&name).ok_or_else(|| serde::de::Error::custom(format!("unknown scope \"{name}\"")))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Unknown role \"{0}\": choose owner, admin, member or viewer.")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            "viewer" => Ok(Role::Viewer),
            _ => Err(UnknownRole(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_scope_includes_reading_that_resource_and_nothing_else() {
        let scope = |name| Scope::parse(name).unwrap();
        assert!(scope("documents:write").covers(scope("documents:read")));
        assert!(scope("documents:read").covers(scope("documents:read")));
        assert!(!scope("documents:read").covers(scope("documents:write")));
        assert!(!scope("documents:write").covers(scope("projects:read")));
    }

    #[test]
    fn viewers_read_but_never_write() {
        assert!(Role::Viewer.can(Permission::ViewProjects));
        assert!(!Role::Viewer.can(Permission::WriteProjects));
        assert!(!Role::Viewer.can(Permission::ManageMembers));
    }

    #[test]
    fn members_create_projects_but_do_not_manage_the_team() {
        assert!(Role::Member.can(Permission::WriteProjects));
        assert!(!Role::Member.can(Permission::ManageMembers));
    }

    #[test]
    fn only_owners_hand_out_ownership() {
        assert!(Role::Owner.may_assign(Role::Owner));
        assert!(!Role::Admin.may_assign(Role::Owner));
        assert!(Role::Admin.may_assign(Role::Member));
        assert!(!Role::Member.may_assign(Role::Viewer));
    }

    #[test]
    fn api_key_scopes_come_from_the_permission_table_and_nothing_else() {
        let names: Vec<String> = Scope::all().into_iter().map(Scope::as_str).collect();
        assert_eq!(names, ["projects:read", "projects:write", "documents:read", "documents:write", "members:read", "audit_log:read"]);
        assert_eq!(Permission::ManageMembers.key_scope(), None);
        assert_eq!(Permission::ManageApiKeys.key_scope(), None);
        assert_eq!(Scope::parse("members:read").map(Scope::as_str).as_deref(), Some("members:read"));
        // Named in no permission: not a scope a key can have.
        assert_eq!(Scope::parse("members:write"), None);
        assert_eq!(Scope::parse("admin"), None);
        assert!(serde_json::from_str::<Scope>("\"members:write\"").is_err());
        assert_eq!(serde_json::to_string(&Scope::parse("documents:write")).unwrap(), "\"documents:write\"");
    }

    #[test]
    fn each_permission_is_open_to_its_least_role_and_every_stronger_one() {
        for permission in Permission::ALL {
            let allowed: Vec<Role> = Role::ALL.into_iter().filter(|r| r.can(*permission)).collect();
            let least = Role::ALL.iter().position(|r| *r == permission.least_role()).unwrap();
            assert_eq!(allowed, Role::ALL[..=least], "{permission:?}");
        }
        assert!(Role::Member.can(Permission::WriteDocuments));
        assert!(!Role::Member.can(Permission::ManageDocuments));
        assert!(Role::Viewer.can(Permission::ViewDocuments));
    }

    #[test]
    fn a_custom_role_has_the_baseline_and_what_was_chosen_but_never_an_owners_rights() {
        let auditor = Rights::Custom(CustomRole {
            id: uuid::Uuid::nil(),
            name: "Auditor".into(),
            permissions: vec![Permission::ViewAudit, Permission::ManageSecurity],
        });
        assert!(auditor.can(Permission::ViewAudit) && auditor.can(Permission::ViewProjects) && auditor.can(Permission::LeaveOrganization));
        assert!(!auditor.can(Permission::WriteProjects));
        assert!(!auditor.can(Permission::ManageSecurity), "Owner-only, even if stored");
        assert!(Rights::BuiltIn(Role::Admin).covers(&auditor));
        assert!(!Rights::BuiltIn(Role::Member).covers(&auditor));
        assert!(Rights::BuiltIn(Role::Admin).may_assign(&auditor));
        assert!(!auditor.may_assign(&Rights::BuiltIn(Role::Viewer)), "assigning needs the right to manage members");
        assert!(Permission::catalogue().all(|p| !p.is_baseline() && !p.owner_only()));
        assert_eq!(Permission::parse("ViewAudit"), Some(Permission::ViewAudit));
        assert_eq!(serde_json::to_string(&Permission::ManageRoles).unwrap(), "\"ManageRoles\"");
    }

    #[test]
    fn roles_parse_case_insensitively_and_reject_garbage() {
        assert_eq!("Admin".parse::<Role>(), Ok(Role::Admin));
        assert!("root".parse::<Role>().is_err());
    }
}
