//! Roles and the permission matrix. The UI asks `role.can(..)` to decide what to show; the
//! server asks the very same question before every mutation, so the two can never disagree.

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

/// Everything a member can attempt inside an organization.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Permission {
    ViewProjects,
    /// Create projects, and change or delete the ones you created.
    CreateProject,
    /// Change or delete anyone's project.
    ManageProjects,
    ViewMembers,
    /// Add existing users and change roles of non-owners.
    ManageMembers,
    /// Grant or take away the Owner role.
    ManageOwners,
    ViewAudit,
    /// See where the organization's data lives and its other settings.
    ViewSettings,
    /// Schedule the organization (and all its data) for deletion, or cancel that.
    DeleteOrganization,
    /// Change how members must sign in: the two-factor requirement, single sign-on (Owners).
    ManageSecurity,
    /// Create and revoke the organization's API keys.
    ManageApiKeys,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Member, Role::Viewer];

    pub fn can(self, permission: Permission) -> bool {
        use Permission::*;
        match permission {
            ViewProjects | ViewMembers => true,
            CreateProject => matches!(self, Role::Owner | Role::Admin | Role::Member),
            ManageProjects | ManageMembers | ViewAudit | ViewSettings | ManageApiKeys => matches!(self, Role::Owner | Role::Admin),
            // Whoever controls the IdP or the sign-in rules can sign in as anyone at the
            // organization's domains, Owners included: so only Owners may.
            ManageOwners | DeleteOrganization | ManageSecurity => self == Role::Owner,
        }
    }

    /// Whether a member with this role may give `target` to someone (or take it away).
    pub fn may_assign(self, target: Role) -> bool {
        if target == Role::Owner {
            self.can(Permission::ManageOwners)
        } else {
            self.can(Permission::ManageMembers)
        }
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

/// What an organization API key may do. A key never has a role: only these scopes, which map
/// onto the same permissions the UI and server check for people.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scope {
    #[serde(rename = "projects:read")]
    ProjectsRead,
    #[serde(rename = "projects:write")]
    ProjectsWrite,
    #[serde(rename = "members:read")]
    MembersRead,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::ProjectsRead, Scope::ProjectsWrite, Scope::MembersRead];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ProjectsRead => "projects:read",
            Scope::ProjectsWrite => "projects:write",
            Scope::MembersRead => "members:read",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == s.trim())
    }

    pub fn description(self) -> &'static str {
        match self {
            Scope::ProjectsRead => "List and read projects",
            Scope::ProjectsWrite => "Create, change and delete projects",
            Scope::MembersRead => "List members and their roles",
        }
    }

    /// The scope a permission needs, if a key can be given it at all.
    pub fn needed_for(permission: Permission) -> Option<Scope> {
        match permission {
            Permission::ViewProjects => Some(Scope::ProjectsRead),
            Permission::CreateProject | Permission::ManageProjects => Some(Scope::ProjectsWrite),
            Permission::ViewMembers => Some(Scope::MembersRead),
            _ => None,
        }
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
    fn viewers_read_but_never_write() {
        assert!(Role::Viewer.can(Permission::ViewProjects));
        assert!(!Role::Viewer.can(Permission::CreateProject));
        assert!(!Role::Viewer.can(Permission::ManageMembers));
    }

    #[test]
    fn members_create_projects_but_do_not_manage_the_team() {
        assert!(Role::Member.can(Permission::CreateProject));
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
    fn api_key_scopes_cover_only_reading_and_creating_projects_and_reading_members() {
        assert_eq!(Scope::needed_for(Permission::CreateProject), Some(Scope::ProjectsWrite));
        assert_eq!(Scope::needed_for(Permission::ManageMembers), None);
        assert_eq!(Scope::needed_for(Permission::ManageApiKeys), None);
        assert_eq!(Scope::parse("members:read"), Some(Scope::MembersRead));
        assert_eq!(Scope::parse("admin"), None);
    }

    #[test]
    fn roles_parse_case_insensitively_and_reject_garbage() {
        assert_eq!("Admin".parse::<Role>(), Ok(Role::Admin));
        assert!("root".parse::<Role>().is_err());
    }
}
