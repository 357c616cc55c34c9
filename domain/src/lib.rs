//! Tessera's pure domain: everything here compiles for both the browser (WASM) and the server,
//! so the UI and the server make the same decisions from the same code.

pub mod access;
pub mod audit;
pub mod billing;
pub mod dto;
pub mod error;
pub mod input;
pub mod placement;
pub mod role;
pub mod webhooks;

pub use error::AppError;
pub use role::{Access, CustomRole, Permission, Resource, Rights, Role, Scope};
