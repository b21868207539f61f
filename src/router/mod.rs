//! Account selection. Never calls the upstream; reads account state from [`crate::accounts`].

mod selector;

pub use selector::{NoAccount, Selector};
