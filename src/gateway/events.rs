//! The running gateway's events: what happened (a request finished, an account changed state, a login, a
//! reload, a client key), delivered to every subscriber (the admin API's event stream, the desktop tray).
//!
//! A bounded broadcast channel: publishing never waits, whatever the subscribers do. A subscriber that falls
//! behind by more than the channel holds skips the oldest events and is told how many with a `lagged` event, so
//! a slow reader can never slow a request down. With nobody subscribed, publishing builds nothing (one atomic
//! load). Events say nothing secret: names, ids, states and messages the status report also shows; a request
//! summary has no content or credential.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Serialize, Serializer};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::accounts::AccountState;
use crate::clock::{Clock, rfc3339};
use crate::usage::{RequestRecord, UsageTotals};

/// Events a subscriber may fall behind by before it skips some (and gets a `lagged` event).
pub const CAPACITY: usize = 1024;

/// One event: when it happened and what. Serialised as one JSON object, `{"type": "account_state", "time":
/// "2025-…Z", …the kind's fields}`, as the admin API's event stream sends it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
    /// When, in Unix milliseconds on the gateway's clock (`time`, RFC 3339, in JSON).
    #[serde(rename = "time", serialize_with = "as_rfc3339")]
    pub time_ms: u64,
}

impl Event {
    /// The event's type name, as in its JSON `type` (and the SSE `event:` field).
    pub fn name(&self) -> &'static str {
        self.kind.name()
    }
}

/// What happened. The JSON `type` of each is its name in snake case.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// A client request finished (its usage record: no content, no secrets).
    RequestFinished {
        /// The request's summary.
        request: Box<RequestRecord>,
    },
    /// An account's public state changed (as the status report shows it).
    AccountState {
        /// The account.
        account_id: String,
        /// Its name.
        name: String,
        /// The new state.
        state: AccountState,
        /// When a bench ends (`cooling_down`, `circuit_open`), Unix ms (`until`, RFC 3339, in JSON).
        #[serde(rename = "until", serialize_with = "as_rfc3339_opt", skip_serializing_if = "Option::is_none")]
        until_ms: Option<u64>,
        /// Why (`error`: the upstream's message; `needs_login`: what to do).
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// An OAuth login was started (its authorize URL handed out).
    LoginStarted {
        /// The account logging in.
        account_id: String,
    },
    /// An OAuth login completed and is in force.
    LoginCompleted {
        /// The account.
        account_id: String,
        /// The login's email, when the token endpoint said.
        #[serde(skip_serializing_if = "Option::is_none")]
        email: Option<String>,
    },
    /// An OAuth login could not be completed.
    LoginFailed {
        /// The account, when the callback matched a login in progress.
        #[serde(skip_serializing_if = "Option::is_none")]
        account_id: Option<String>,
        /// Why.
        message: String,
    },
    /// A new configuration is in force.
    ConfigReloaded {
        /// Accounts in force.
        accounts: usize,
        /// Client keys in force.
        client_keys: usize,
    },
    /// A changed config file is not in force: it does not parse or validate, or applying it failed (then the
    /// gateway retries it).
    ConfigRejected {
        /// Why, as the status report's pending change says.
        reason: String,
    },
    /// A client key appeared in the configuration in force.
    ClientKeyCreated {
        /// Its id (`key_…`, see [`crate::config::ClientKey::id`]).
        id: String,
        /// Its name.
        name: String,
    },
    /// A client key left the configuration in force.
    ClientKeyRevoked {
        /// Its id.
        id: String,
        /// Its name.
        name: String,
    },
    /// Today's usage totals changed.
    Usage {
        /// Totals since midnight.
        today: Box<UsageTotals>,
    },
    /// This subscriber fell behind and skipped events.
    Lagged {
        /// How many it missed.
        missed: u64,
    },
}

impl EventKind {
    /// The JSON `type` of this kind.
    pub fn name(&self) -> &'static str {
        match self {
            Self::RequestFinished { .. } => "request_finished",
            Self::AccountState { .. } => "account_state",
            Self::LoginStarted { .. } => "login_started",
            Self::LoginCompleted { .. } => "login_completed",
            Self::LoginFailed { .. } => "login_failed",
            Self::ConfigReloaded { .. } => "config_reloaded",
            Self::ConfigRejected { .. } => "config_rejected",
            Self::ClientKeyCreated { .. } => "client_key_created",
            Self::ClientKeyRevoked { .. } => "client_key_revoked",
            Self::Usage { .. } => "usage",
            Self::Lagged { .. } => "lagged",
        }
    }
}

fn as_rfc3339<S: Serializer>(ms: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*ms))
}

fn as_rfc3339_opt<S: Serializer>(ms: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => as_rfc3339(ms, s),
        None => s.serialize_none(),
    }
}

/// The gateway's event channel (clones share it).
#[derive(Debug, Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Event>,
    /// Live [`Subscription`]s: read with one atomic load before anything is built (the broadcast sender's own
    /// count takes a lock).
    subscribers: Arc<AtomicUsize>,
    clock: Arc<dyn Clock>,
    /// Cancelled when the gateway shuts down: every subscription ends.
    closed: CancellationToken,
}

impl EventBus {
    /// A bus holding up to `capacity` events per subscriber, stamping them with `clock`.
    pub(crate) fn new(capacity: usize, clock: Arc<dyn Clock>) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Self { sender, subscribers: Arc::default(), clock, closed: CancellationToken::new() }
    }

    /// A new subscription, receiving every event published from now on.
    pub fn subscribe(&self) -> Subscription {
        self.subscribers.fetch_add(1, Ordering::AcqRel);
        Subscription {
            receiver: self.sender.subscribe(),
            closed: self.closed.clone(),
            clock: self.clock.clone(),
            _counted: Counted(self.subscribers.clone()),
        }
    }

    /// Whether anyone listens.
    pub fn has_subscribers(&self) -> bool {
        self.subscribers.load(Ordering::Acquire) > 0
    }

    /// Publishes the event `make` builds, stamped with the current time; `make` is not called when nobody
    /// listens. Never waits.
    pub(crate) fn publish(&self, make: impl FnOnce() -> EventKind) {
        if !self.has_subscribers() {
            return;
        }
        let event = Event { kind: make(), time_ms: self.clock.now_ms() };
        tracing::trace!(event = event.name(), "event");
        // An error only means the last subscriber left meanwhile.
        let _ = self.sender.send(event);
    }

    /// Ends every subscription (the gateway is shutting down): their `recv` returns `None` from now on.
    pub(crate) fn close(&self) {
        self.closed.cancel();
    }

    /// Resolves when the bus is closed (shutdown): a task that only publishes ends with it.
    pub(crate) async fn closed(&self) {
        self.closed.cancelled().await;
    }
}

/// Decrements the subscriber count when its subscription is dropped.
#[derive(Debug)]
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A subscriber's end of the event bus ([`crate::GatewayHandle::subscribe`]).
#[derive(Debug)]
pub struct Subscription {
    receiver: broadcast::Receiver<Event>,
    closed: CancellationToken,
    clock: Arc<dyn Clock>,
    _counted: Counted,
}

impl Subscription {
    /// The next event; `None` once the gateway has shut down. After falling behind, the next event is a
    /// [`EventKind::Lagged`] saying how many were skipped, and the ones after it follow on as usual.
    /// Cancel-safe: dropping the future loses no event.
    pub async fn recv(&mut self) -> Option<Event> {
        tokio::select! {
            biased;
            () = self.closed.cancelled() => None,
            received = self.receiver.recv() => match received {
                Ok(event) => Some(event),
                Err(RecvError::Lagged(missed)) => {
                    Some(Event { kind: EventKind::Lagged { missed }, time_ms: self.clock.now_ms() })
                }
                Err(RecvError::Closed) => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn bus(capacity: usize) -> EventBus {
        EventBus::new(capacity, Arc::new(ManualClock::new(1_700_000_000_000)))
    }

    fn reloaded(accounts: usize) -> EventKind {
        EventKind::ConfigReloaded { accounts, client_keys: 0 }
    }

    #[test]
    fn publishing_without_subscribers_builds_nothing() {
        let bus = bus(8);
        bus.publish(|| panic!("the event was built although nobody listens"));
        let subscription = bus.subscribe();
        assert!(bus.has_subscribers());
        drop(subscription);
        assert!(!bus.has_subscribers(), "a dropped subscription no longer counts");
        bus.publish(|| panic!("built after the last subscriber left"));
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_told_how_many_it_missed_then_continues() {
        let bus = bus(4);
        let mut slow = bus.subscribe();
        let mut keeping_up = bus.subscribe();
        for n in 0..10 {
            bus.publish(|| reloaded(n));
            assert_eq!(keeping_up.recv().await.unwrap().kind, reloaded(n));
        }
        assert_eq!(slow.recv().await.unwrap().kind, EventKind::Lagged { missed: 6 });
        for n in 6..10 {
            assert_eq!(slow.recv().await.unwrap().kind, reloaded(n), "the newest events follow in order");
        }
        bus.publish(|| reloaded(10));
        assert_eq!(slow.recv().await.unwrap().kind, reloaded(10));
    }

    #[tokio::test]
    async fn closing_the_bus_ends_every_subscription() {
        let bus = bus(4);
        let mut subscription = bus.subscribe();
        bus.publish(|| reloaded(1));
        bus.close();
        assert_eq!(subscription.recv().await, None, "a closed bus ends the stream even with events queued");
    }

    #[test]
    fn events_serialise_flat_with_their_type_and_rfc3339_times() {
        let event = Event {
            kind: EventKind::AccountState {
                account_id: "acc_1".into(),
                name: "main".into(),
                state: AccountState::CoolingDown,
                until_ms: Some(1_700_000_060_000),
                message: None,
            },
            time_ms: 1_700_000_000_000,
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "type": "account_state", "time": "2023-11-14T22:13:20Z", "account_id": "acc_1", "name": "main",
                "state": "cooling_down", "until": "2023-11-14T22:14:20Z",
            })
        );
    }

    #[test]
    fn every_kinds_name_is_its_json_type() {
        let request = RequestRecord::new(1, "req_gw_1", crate::usage::Route::Messages, crate::usage::ClientKind::Other);
        let kinds = [
            EventKind::RequestFinished { request: Box::new(request) },
            EventKind::AccountState {
                account_id: "a".into(),
                name: "n".into(),
                state: AccountState::Active,
                until_ms: None,
                message: None,
            },
            EventKind::LoginStarted { account_id: "a".into() },
            EventKind::LoginCompleted { account_id: "a".into(), email: None },
            EventKind::LoginFailed { account_id: None, message: "m".into() },
            reloaded(1),
            EventKind::ConfigRejected { reason: "r".into() },
            EventKind::ClientKeyCreated { id: "key_0".into(), name: "k".into() },
            EventKind::ClientKeyRevoked { id: "key_0".into(), name: "k".into() },
            EventKind::Usage { today: Box::default() },
            EventKind::Lagged { missed: 1 },
        ];
        for kind in kinds {
            let json = serde_json::to_value(Event { kind: kind.clone(), time_ms: 0 }).unwrap();
            assert_eq!(json["type"], kind.name(), "{json}");
        }
    }
}
