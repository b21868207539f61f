//! `GET /admin/api/v1/events`: the gateway's events as Server-Sent Events, one `event: <type>` / `data: <JSON>`
//! block each, after a `: connected` comment (so a client sees the stream open before the first event) and with a
//! `: keep-alive` comment every 15 s of quiet (which also finds a client that went away). The stream ends when the
//! client goes away (the subscription is dropped with it) or when the gateway shuts down.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::IntoResponse;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::StreamExt;
use futures_util::stream;

use crate::gateway::{Event, Gateway};

/// Quiet time after which a keep-alive comment goes out.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The event stream.
pub(super) async fn stream(State(gateway): State<Arc<Gateway>>) -> impl IntoResponse {
    // Subscribed before the answer goes out: nothing published after the `connected` comment is missed.
    let subscription = gateway.subscribe();
    let connected = stream::once(async { Ok::<_, Infallible>(SseEvent::default().comment("connected")) });
    let events = stream::unfold(subscription, |mut subscription| async move {
        let event = subscription.recv().await?;
        Some((Ok(frame(&event)), subscription))
    });
    Sse::new(connected.chain(events)).keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
}

/// One event as its SSE block.
fn frame(event: &Event) -> SseEvent {
    let sse = SseEvent::default().event(event.name());
    match serde_json::to_string(event) {
        Ok(json) => sse.data(json),
        // Our event types always serialise; should one not, the subscriber still learns something happened.
        Err(e) => {
            tracing::warn!(event = event.name(), "event not serialisable: {e}");
            sse.data(format!(r#"{{"type":"{}"}}"#, event.name()))
        }
    }
}
