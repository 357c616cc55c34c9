pub mod form;
pub mod layout;
pub mod raw_text;
pub mod reauth;
