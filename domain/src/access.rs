//! Who may do what to which thing: the one answer the door, the services, the REST API, API
//! keys and the UI all ask for ([`can`]).
//!
//! An organization-wide role (see [`crate::role`]) says what someone may do everywhere that is
//! open to the whole organization. A project can instead be *restricted*: then only people with
//! a grant on it (their own, or one of their groups') see it, each with a [`ProjectRole`], and
//! those whose role may manage every project (Owners and Admins). A grant works on an open
//! project too, to give someone more there than their role does.
//!
//! Row-level security enforces the same visibility in the database (migration
//! `project_access`), so a query that forgot to ask still can't read a restricted project.

use crate::role::{Permission, Rights, Scope};
use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr};
use uuid::Uuid;

/// What a grant on one project gives. Declared strongest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ProjectRole {
    /// Everything on the project: rename, delete, restrict, share; every document.
    Admin,
    /// Read the project; write documents in it and change or delete any of them.
    Editor,
    /// Read the project and its documents.
    Viewer,
}

impl ProjectRole {
    pub const ALL: [ProjectRole; 3] = [ProjectRole::Admin, ProjectRole::Editor, ProjectRole::Viewer];

    /// Whether this grant gives `permission` on its project.
    pub fn includes(self, permission: Permission) -> bool {
        use Permission::*;
        match permission {
            ViewProjects | ViewDocuments => true,
            WriteDocuments | ManageDocuments => self <= ProjectRole::Editor,
            WriteProjects | ManageProjects => self == ProjectRole::Admin,
            _ => false,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProjectRole::Admin => "admin",
            ProjectRole::Editor => "editor",
            ProjectRole::Viewer => "viewer",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ProjectRole::Admin => "Project admin",
            ProjectRole::Editor => "Editor",
            ProjectRole::Viewer => "Viewer",
        }
    }

    /// What it gives, in words, for the sharing form.
    pub fn description(self) -> &'static str {
        match self {
            ProjectRole::Admin => "Can rename, delete and share the project, and change every document",
            ProjectRole::Editor => "Can write documents and change any of them",
            ProjectRole::Viewer => "Can read the project and its documents",
        }
    }
}

impl fmt::Display for ProjectRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl FromStr for ProjectRole {
    type Err = crate::input::FieldError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "admin" => Ok(ProjectRole::Admin),
            "editor" => Ok(ProjectRole::Editor),
            "viewer" => Ok(ProjectRole::Viewer),
            _ => Err(crate::input::FieldError::new("role", "Choose admin, editor or viewer for the project role.")),
        }
    }
}

/// Who can see a project.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Everyone in the organization, with what their role allows.
    #[default]
    Organization,
    /// Only people granted access, and Owners and Admins.
    Restricted,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Organization => "organization",
            Visibility::Restricted => "restricted",
        }
    }
}

impl FromStr for Visibility {
    type Err = crate::input::FieldError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "organization" => Ok(Visibility::Organization),
            "restricted" => Ok(Visibility::Restricted),
            _ => Err(crate::input::FieldError::new("visibility", "Choose organization (everyone in it) or restricted (only people given access).")),
        }
    }
}

/// One project as the actor stands towards it: who can see it, who made it, and the strongest
/// grant the actor holds on it (their own or a group's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProjectStanding {
    pub visibility: Visibility,
    pub created_by: Uuid,
    pub grant: Option<ProjectRole>,
}

/// Who is acting: a person with their organization role, or an API key acting with its
/// creator's role (and grants) and no more than its scopes.
#[derive(Clone, Copy, Debug)]
pub struct Actor<'a> {
    pub user_id: Uuid,
    pub rights: &'a Rights,
    /// `Some`: an API key with these scopes.
    pub key: Option<&'a [Scope]>,
}

impl Actor<'_> {
    /// Whether the role sees every project, restricted ones included.
    pub fn sees_every_project(&self) -> bool {
        self.rights.can(Permission::ManageProjects)
    }
}

/// What is acted on.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// The organization as a whole: its team, its settings, creating a project.
    Organization,
    /// One project: reading it, changing or sharing it, or writing a document in it.
    Project(&'a ProjectStanding),
    /// One document, written by `author`, in the project it belongs to.
    Document { project: &'a ProjectStanding, author: Uuid },
}

/// Why not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denied {
    /// The actor can't see the thing at all: answer as if it weren't there.
    Hidden,
    /// An API key may never do this.
    KeyNever,
    /// The API key lacks this scope.
    KeyScope(Scope),
    /// The API key's creator may not do it (any more); their role's name.
    KeyCreator(String),
    /// A person who may not; the words say what they may do instead.
    NotAllowed(&'static str),
}

impl Denied {
    /// As the error that crosses the wire. `hidden`: the not-found answer for this kind of thing.
    pub fn into_error(self, hidden: impl FnOnce() -> crate::AppError) -> crate::AppError {
        use crate::AppError::Forbidden;
        match self {
            Denied::Hidden => hidden(),
            Denied::KeyNever => Forbidden("API keys can't do that; sign in as a person instead.".into()),
            Denied::KeyScope(scope) => {
                Forbidden(format!("This API key doesn't have the {} scope. An admin can create a key that has it.", scope.as_str()))
            }
            Denied::KeyCreator(role) => {
                let article = if role.starts_with(['A', 'E', 'I', 'O', 'U']) { "an" } else { "a" };
                Forbidden(format!(
                    "This API key acts with the rights of the person who made it, who is {article} {role} and can't do that. An admin can make a key that may."
                ))
            }
            Denied::NotAllowed(why) => Forbidden(why.into()),
        }
    }
}

const ROLE_REFUSAL: &str = "Your role in this organization doesn't allow that. Ask an admin or owner.";

/// Whether `actor` may do `permission` to `target`. On a project, `WriteProjects` asks to
/// change, delete or share *this* project and `WriteDocuments` to write a document in it; on a
/// document, `WriteDocuments` asks to change or delete *this* document.
pub fn can(actor: &Actor, permission: Permission, target: Target) -> Result<(), Denied> {
    if let Some(scopes) = actor.key {
        let Some(needed) = permission.key_scope() else { return Err(Denied::KeyNever) };
        if !scopes.iter().any(|held| held.covers(needed)) {
            return Err(Denied::KeyScope(needed));
        }
    }
    let refuse = |why: &'static str| if actor.key.is_some() { Denied::KeyCreator(actor.rights.label().to_string()) } else { Denied::NotAllowed(why) };
    let project = match target {
        Target::Organization => {
            return if actor.rights.can(permission) { Ok(()) } else { Err(refuse(ROLE_REFUSAL)) };
        }
        Target::Project(project) | Target::Document { project, .. } => project,
    };
    // What the role gives applies where the whole organization may look (or the role sees
    // everything); a grant applies to its project wherever it is.
    let role_applies = project.visibility == Visibility::Organization || actor.sees_every_project();
    if !role_applies && project.grant.is_none() {
        return Err(Denied::Hidden);
    }
    let holds = |p: Permission| (role_applies && actor.rights.can(p)) || project.grant.is_some_and(|g| g.includes(p));
    let allowed = match (permission, target) {
        (Permission::ViewProjects | Permission::ViewDocuments, _) => holds(permission),
        // Changing or deleting a project: its admins, or its creator by their role's right.
        (Permission::WriteProjects, Target::Project(p)) => {
            holds(Permission::ManageProjects) || (holds(Permission::WriteProjects) && p.created_by == actor.user_id)
        }
        // Deciding who has access (restricting, sharing): its admins only. Not its creator by
        // that alone: a project admin may change every document in it, so a Member who could
        // restrict their open project (or share it with themselves) would gain rights over
        // what others wrote there.
        (Permission::ManageProjects, Target::Project(_)) => holds(Permission::ManageProjects),
        (Permission::WriteDocuments | Permission::ManageDocuments, Target::Project(_)) => holds(Permission::WriteDocuments),
        (Permission::WriteDocuments | Permission::ManageDocuments, Target::Document { author, .. }) => {
            holds(Permission::ManageDocuments) || (holds(Permission::WriteDocuments) && author == actor.user_id)
        }
        _ => false,
    };
    if allowed {
        return Ok(());
    }
    Err(refuse(match permission {
        Permission::ManageProjects => {
            "Only the project's admins, and the organization's Owners and Admins, decide who has access to it. Ask one of them."
        }
        Permission::WriteProjects => {
            "You can change and delete the projects you created, and those you are a project admin of; an admin can change this one."
        }
        Permission::WriteDocuments | Permission::ManageDocuments if !holds(Permission::WriteDocuments) => {
            "Your role lets you read this project's documents, not write or change them. A project admin can make you an editor."
        }
        Permission::WriteDocuments | Permission::ManageDocuments => {
            "You can change and delete the documents you created; the project's editors and admins, and the organization's admins, can change this one."
        }
        _ => ROLE_REFUSAL,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::role::Role;

    const ME: Uuid = Uuid::from_u128(1);
    const SOMEONE: Uuid = Uuid::from_u128(2);

    fn person(role: Role) -> Actor<'static> {
        Actor { user_id: ME, rights: Box::leak(Box::new(Rights::BuiltIn(role))), key: None }
    }

    fn project(visibility: Visibility, created_by: Uuid, grant: Option<ProjectRole>) -> ProjectStanding {
        ProjectStanding { visibility, created_by, grant }
    }

    #[test]
    fn a_restricted_project_is_hidden_from_members_without_a_grant_but_never_from_admins() {
        let secret = project(Visibility::Restricted, SOMEONE, None);
        for role in [Role::Member, Role::Viewer] {
            assert_eq!(can(&person(role), Permission::ViewProjects, Target::Project(&secret)), Err(Denied::Hidden));
        }
        for role in [Role::Owner, Role::Admin] {
            assert_eq!(can(&person(role), Permission::ViewProjects, Target::Project(&secret)), Ok(()));
            assert_eq!(can(&person(role), Permission::WriteProjects, Target::Project(&secret)), Ok(()));
        }
    }

    #[test]
    fn a_grant_gives_its_project_role_whatever_the_organization_role() {
        let viewer_grant = project(Visibility::Restricted, SOMEONE, Some(ProjectRole::Viewer));
        let editor_grant = project(Visibility::Restricted, SOMEONE, Some(ProjectRole::Editor));
        let admin_grant = project(Visibility::Restricted, SOMEONE, Some(ProjectRole::Admin));
        let member = person(Role::Member);
        assert!(can(&member, Permission::ViewDocuments, Target::Project(&viewer_grant)).is_ok());
        assert!(can(&member, Permission::WriteDocuments, Target::Project(&viewer_grant)).is_err());
        // An organization Viewer made an editor of one project writes there, and only there.
        let viewer = person(Role::Viewer);
        assert!(can(&viewer, Permission::WriteDocuments, Target::Project(&editor_grant)).is_ok());
        assert!(can(&viewer, Permission::WriteDocuments, Target::Document { project: &editor_grant, author: SOMEONE }).is_ok());
        assert!(can(&viewer, Permission::WriteProjects, Target::Project(&editor_grant)).is_err());
        assert!(can(&viewer, Permission::WriteProjects, Target::Project(&admin_grant)).is_ok());
        assert!(can(&viewer, Permission::ManageProjects, Target::Project(&admin_grant)).is_ok());
        assert!(can(&viewer, Permission::WriteDocuments, Target::Project(&project(Visibility::Organization, SOMEONE, None))).is_err());
    }

    #[test]
    fn on_an_open_project_the_role_decides_as_before() {
        let theirs = project(Visibility::Organization, SOMEONE, None);
        let mine = project(Visibility::Organization, ME, None);
        let member = person(Role::Member);
        assert!(can(&member, Permission::WriteDocuments, Target::Project(&theirs)).is_ok());
        assert!(can(&member, Permission::WriteProjects, Target::Project(&mine)).is_ok());
        // Changing their own project is theirs; who has access to it is for its admins.
        assert!(can(&member, Permission::ManageProjects, Target::Project(&mine)).is_err());
        assert!(can(&member, Permission::WriteProjects, Target::Project(&theirs)).is_err());
        assert!(can(&member, Permission::WriteDocuments, Target::Document { project: &theirs, author: ME }).is_ok());
        assert!(can(&member, Permission::WriteDocuments, Target::Document { project: &theirs, author: SOMEONE }).is_err());
        assert!(can(&person(Role::Viewer), Permission::WriteDocuments, Target::Project(&theirs)).is_err());
        assert!(can(&person(Role::Admin), Permission::WriteDocuments, Target::Document { project: &theirs, author: SOMEONE }).is_ok());
    }

    #[test]
    fn the_creator_of_a_restricted_project_keeps_nothing_without_a_grant() {
        let restricted = project(Visibility::Restricted, ME, None);
        assert_eq!(can(&person(Role::Member), Permission::WriteProjects, Target::Project(&restricted)), Err(Denied::Hidden));
    }

    #[test]
    fn a_key_needs_its_scope_and_its_creators_rights_on_the_project() {
        let read = [Scope::parse("documents:read").unwrap()];
        let write = [Scope::parse("documents:write").unwrap()];
        let granted = project(Visibility::Restricted, SOMEONE, Some(ProjectRole::Viewer));
        let hidden = project(Visibility::Restricted, SOMEONE, None);
        let member: &'static Rights = Box::leak(Box::new(Rights::BuiltIn(Role::Member)));
        let key = |scopes: &'static [Scope]| Actor { user_id: ME, rights: member, key: Some(scopes) };
        let read: &'static [Scope] = Box::leak(Box::new(read));
        let write: &'static [Scope] = Box::leak(Box::new(write));
        assert!(can(&key(read), Permission::ViewDocuments, Target::Project(&granted)).is_ok());
        assert_eq!(can(&key(read), Permission::WriteDocuments, Target::Project(&granted)), Err(Denied::KeyScope(write[0])));
        assert_eq!(can(&key(write), Permission::WriteDocuments, Target::Project(&granted)), Err(Denied::KeyCreator("Member".into())));
        assert_eq!(can(&key(write), Permission::ViewDocuments, Target::Project(&hidden)), Err(Denied::Hidden));
        assert_eq!(can(&key(write), Permission::ManageMembers, Target::Organization), Err(Denied::KeyNever));
    }

    #[test]
    fn project_roles_parse_and_rank() {
        assert_eq!("Editor".parse::<ProjectRole>(), Ok(ProjectRole::Editor));
        assert!("owner".parse::<ProjectRole>().is_err());
        assert!(ProjectRole::Admin < ProjectRole::Viewer);
        assert_eq!("restricted".parse::<Visibility>(), Ok(Visibility::Restricted));
    }
}
