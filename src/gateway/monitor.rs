//! The account-state monitor: one task that re-reads every account's public state (as the status report shows
//! it, OAuth token state included) and publishes an `account_state` event for each one that changed since it
//! last looked; it also reports a config file version that is not in force (`config_rejected`).
//!
//! It looks when woken, never on a poll:
//! - by the [`crate::accounts::StateSignal`] the places that may change a state notify: a bench and a rejected
//!   credential (request path: one notify, only then, never on a healthy answer), an OAuth refresh starting or
//!   ending and a login adopted (token manager), a reload and a login put in force (gateway);
//! - when the earliest bench ends, so a cooldown that runs out shows `active` at that moment without any
//!   request: a timer on the system clock, or, for a clock that moves only when told to (tests' manual
//!   clock), each move of it ([`crate::clock::Clock::moved`]);
//! - when the config watcher reports a version it could not put in force ([`ConfigSync`]).

use std::collections::HashMap;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::{Gateway, with_oauth};
use crate::accounts::{AccountState, AccountView, LiveAccount};
use crate::config::AccountKind;
use crate::config::watch::ConfigSync;
use crate::upstream::oauth::OAuthStatus;

use super::events::EventKind;

/// The longest the monitor sleeps towards a bench end before looking again: the system clock can be set while
/// the timer (which runs on monotonic time) sleeps.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// What subscribers are told about one account; a change of any field is an `account_state` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    /// The state, as the status report shows it.
    pub(crate) state: AccountState,
    /// When a bench ends (cooling down, circuit open), Unix ms.
    pub(crate) until_ms: Option<u64>,
    /// The message of an `error` or `needs_login`.
    pub(crate) message: Option<String>,
}

impl Seen {
    /// What the status report would show for `account` at `now_ms`, with its OAuth token status if any.
    pub(crate) fn of(account: &LiveAccount, now_ms: u64, oauth: Option<&OAuthStatus>) -> Self {
        let mut view = account.view(now_ms);
        if let Some(status) = oauth {
            with_oauth(&mut view, status);
        }
        Self::from_view(&view, account.health.benched(now_ms).map(|(until, _)| until))
    }

    /// From a view and its bench end (`bench_until`, kept only when the view shows the bench).
    pub(crate) fn from_view(view: &AccountView, bench_until: Option<u64>) -> Self {
        let benched = matches!(view.state, AccountState::CoolingDown | AccountState::CircuitOpen);
        let explained = matches!(view.state, AccountState::Error | AccountState::NeedsLogin);
        Self {
            state: view.state,
            until_ms: bench_until.filter(|_| benched),
            message: explained.then(|| view.error.clone()).flatten(),
        }
    }
}

/// Every account's last published state, and the diff against a new look.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    seen: HashMap<String, Seen>,
    /// The first look only sets the baseline: a new subscriber asks the status report for where things stand.
    primed: bool,
}

impl Tracker {
    /// Takes a new look (`(id, name, state)` for every account in force) and returns the events for what
    /// changed: accounts whose state differs, and accounts that appeared. Removed accounts are forgotten (the
    /// reload's own event says the configuration changed).
    pub(crate) fn update(&mut self, now: Vec<(String, String, Seen)>) -> Vec<EventKind> {
        let mut events = Vec::new();
        let mut next = HashMap::with_capacity(now.len());
        for (id, name, seen) in now {
            if self.primed && self.seen.get(&id) != Some(&seen) {
                events.push(EventKind::AccountState {
                    account_id: id.clone(),
                    name,
                    state: seen.state,
                    until_ms: seen.until_ms,
                    message: seen.message.clone(),
                });
            }
            next.insert(id, seen);
        }
        self.seen = next;
        self.primed = true;
        events
    }

    /// The earliest bench end among the accounts, Unix ms.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.seen.values().filter_map(|s| s.until_ms).min()
    }
}

impl Gateway {
    /// Runs the monitor until `stop` changes (or its sender is gone).
    pub(crate) async fn monitor(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut tracker = Tracker::default();
        let mut sync = self.config_sync.clone();
        let mut sync_open = true;
        let mut rejected: Option<(String, String)> = None;
        loop {
            // Registered before looking, so a clock move while the look runs still wakes the wait below.
            let mut moved = pin!(self.clock.moved().map(Notify::notified));
            if let Some(moved) = moved.as_mut().as_pin_mut() {
                moved.enable();
            }
            self.report_rejection(&mut sync, &mut rejected);
            let accounts = self.account_states().await;
            for kind in tracker.update(accounts) {
                self.events.publish(|| kind);
            }
            // A clock that moves only when told to says so; the system clock needs a timer.
            let timer = match (tracker.next_deadline(), moved.is_none()) {
                (Some(until), true) => Some(Duration::from_millis(until.saturating_sub(self.now_ms())).min(MAX_WAIT)),
                _ => None,
            };
            tokio::select! {
                _ = stop.changed() => return,
                () = self.signal.notified() => {}
                () = async {
                    match moved.as_mut().as_pin_mut() {
                        Some(moved) => moved.await,
                        None => std::future::pending().await,
                    }
                } => {}
                () = async {
                    match timer {
                        Some(wait) => tokio::time::sleep(wait).await,
                        None => std::future::pending().await,
                    }
                } => {}
                changed = sync.changed(), if sync_open => sync_open = changed.is_ok(),
            }
        }
    }

    /// Every account's state now. OAuth token states come from the token manager (its first look at a logged-in
    /// account reads the secret store on a blocking thread, never on the runtime).
    async fn account_states(&self) -> Vec<(String, String, Seen)> {
        let live = self.live();
        let now = self.now_ms();
        let states = futures_util::future::join_all(live.accounts.iter().map(|a| async move {
            let oauth = match a.kind() {
                // Not logged in: its state is `needs_login` whatever the token manager says, so the secret store
                // is not read just for the message (a pending login's callbacks are matched without it too).
                AccountKind::Oauth if a.credential.is_none() => self.oauth.cached_status(a.id()),
                AccountKind::Oauth => Some(self.oauth.status(a.id()).await),
                AccountKind::ApiKey => None,
            };
            (a.id().to_string(), a.name().to_string(), Seen::of(a, now, oauth.as_ref()))
        }))
        .await;
        // Clients' own logins passed through: their benches are announced like an account's.
        let mut states = states;
        states.extend(self.own_logins.states(now));
        states
    }

    /// Publishes `config_rejected` for a config file version the watcher could not put in force, once per
    /// version and reason (a version retried with the same error is not repeated).
    fn report_rejection(&self, sync: &mut watch::Receiver<ConfigSync>, last: &mut Option<(String, String)>) {
        let state = sync.borrow_and_update();
        let Some(pending) = &state.pending else {
            *last = None;
            return;
        };
        let Some(error) = &pending.error else { return };
        if last.as_ref().is_some_and(|(sha, reason)| sha == &pending.sha256 && reason == error) {
            return;
        }
        *last = Some((pending.sha256.clone(), error.clone()));
        self.events.publish(|| EventKind::ConfigRejected { reason: error.clone() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::{HealthPolicy, Observation};
    use crate::config::Account;
    use crate::secrets::Secret;
    use crate::upstream::oauth::OAuthState;

    fn seen(state: AccountState, until_ms: Option<u64>, message: Option<&str>) -> Seen {
        Seen { state, until_ms, message: message.map(String::from) }
    }

    fn look(accounts: &[(&str, Seen)]) -> Vec<(String, String, Seen)> {
        accounts.iter().map(|(id, s)| (id.to_string(), format!("name-{id}"), s.clone())).collect()
    }

    fn states(events: &[EventKind]) -> Vec<(String, AccountState, Option<u64>)> {
        events
            .iter()
            .map(|e| match e {
                EventKind::AccountState { account_id, state, until_ms, .. } => (account_id.clone(), *state, *until_ms),
                other => panic!("not an account_state event: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn the_first_look_is_the_baseline_and_announces_nothing() {
        let mut tracker = Tracker::default();
        let events = tracker.update(look(&[("a", seen(AccountState::Active, None, None))]));
        assert!(events.is_empty(), "{events:?}");
        assert!(tracker.update(look(&[("a", seen(AccountState::Active, None, None))])).is_empty(), "no change");
    }

    #[test]
    fn a_changed_state_bench_end_or_message_is_announced_once() {
        let mut tracker = Tracker::default();
        tracker.update(look(&[
            ("a", seen(AccountState::Active, None, None)),
            ("b", seen(AccountState::Active, None, None)),
        ]));
        let benched = look(&[
            ("a", seen(AccountState::CoolingDown, Some(5_000), None)),
            ("b", seen(AccountState::Active, None, None)),
        ]);
        assert_eq!(states(&tracker.update(benched.clone())), [("a".into(), AccountState::CoolingDown, Some(5_000))]);
        assert!(tracker.update(benched).is_empty(), "the same bench is not announced twice");
        let later = look(&[("a", seen(AccountState::CoolingDown, Some(9_000), None))]);
        assert_eq!(states(&tracker.update(later)), [("a".into(), AccountState::CoolingDown, Some(9_000))]);
        tracker.update(look(&[("a", seen(AccountState::Error, None, Some("revoked")))]));
        let events = tracker.update(look(&[("a", seen(AccountState::Error, None, Some("disabled org")))]));
        let [EventKind::AccountState { message, name, .. }] = events.as_slice() else { panic!("{events:?}") };
        assert_eq!(message.as_deref(), Some("disabled org"));
        assert_eq!(name, "name-a");
    }

    #[test]
    fn accounts_that_appear_are_announced_and_removed_ones_forgotten() {
        let mut tracker = Tracker::default();
        tracker.update(look(&[("a", seen(AccountState::Active, None, None))]));
        let events = tracker.update(look(&[
            ("a", seen(AccountState::Active, None, None)),
            ("b", seen(AccountState::NeedsLogin, None, Some("log in"))),
        ]));
        assert_eq!(states(&events), [("b".into(), AccountState::NeedsLogin, None)]);
        assert!(tracker.update(look(&[("b", seen(AccountState::NeedsLogin, None, Some("log in")))])).is_empty());
        let back = tracker.update(look(&[
            ("a", seen(AccountState::Active, None, None)),
            ("b", seen(AccountState::NeedsLogin, None, Some("log in"))),
        ]));
        assert_eq!(states(&back), [("a".into(), AccountState::Active, None)], "a re-added account is new again");
    }

    #[test]
    fn the_next_deadline_is_the_earliest_bench_end() {
        let mut tracker = Tracker::default();
        assert_eq!(tracker.next_deadline(), None);
        tracker.update(look(&[
            ("a", seen(AccountState::CoolingDown, Some(9_000), None)),
            ("b", seen(AccountState::CircuitOpen, Some(4_000), None)),
            ("c", seen(AccountState::Active, None, None)),
        ]));
        assert_eq!(tracker.next_deadline(), Some(4_000));
    }

    fn account(kind: AccountKind, credential: Option<&str>) -> LiveAccount {
        let config = Account {
            id: "acc_1".into(),
            name: "main".into(),
            kind,
            enabled: true,
            weight: 1,
            priority: 0,
            models: vec![],
            base_url: None,
            email: None,
            organization: None,
            oauth_client_id: None,
            clients: None,
            updated_at: String::new(),
        };
        LiveAccount::new(config, "http://up", credential.map(Secret::new))
    }

    #[test]
    fn seen_reads_benches_errors_and_oauth_states_as_the_status_report_does() {
        let a = account(AccountKind::ApiKey, Some("k"));
        assert_eq!(Seen::of(&a, 1_000, None), seen(AccountState::Active, None, None));
        a.health.observe(&Observation::RateLimited { until_ms: 60_000 }, 1_000, &HealthPolicy::default());
        assert_eq!(Seen::of(&a, 1_000, None), seen(AccountState::CoolingDown, Some(60_000), None));
        assert_eq!(Seen::of(&a, 60_000, None), seen(AccountState::Active, None, None), "the bench is over");
        a.mark_error("invalid x-api-key");
        assert_eq!(Seen::of(&a, 60_000, None), seen(AccountState::Error, None, Some("invalid x-api-key")));

        let o = account(AccountKind::Oauth, Some("token"));
        let status = |state| OAuthStatus { state, expires_at: None, last_refresh: None, rate_limited_until: None };
        let refreshing = status(OAuthState::Refreshing);
        assert_eq!(Seen::of(&o, 0, Some(&refreshing)).state, AccountState::Refreshing);
        let needs = status(OAuthState::NeedsLogin { message: "run oauth-start".into() });
        assert_eq!(Seen::of(&o, 0, Some(&needs)), seen(AccountState::NeedsLogin, None, Some("run oauth-start")));
    }
}
