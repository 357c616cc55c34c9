pub mod auth;
pub mod email_links;
pub mod home;
pub mod members;
pub mod not_found;
pub mod org;
pub mod projects;
pub mod settings;
