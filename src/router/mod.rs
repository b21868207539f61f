//! Account selection: strategies, priority tiers, model filters, session affinity and health. Never calls the
//! upstream; reads account state from [`crate::accounts`].

mod affinity;
pub mod schedule;
mod selector;

pub use affinity::Affinity;
pub use selector::{NoAccount, Pick, SelectRequest, Selector};

#[cfg(test)]
mod tests;
