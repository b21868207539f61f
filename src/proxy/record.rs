//! The request's usage record: built as the request goes ([`Recorder`]: arrival, client key, model, each attempt),
//! finished when the answer's last byte has gone to the client or the client went away ([`Recorded`], a body
//! adapter that feeds every chunk to a [`UsageTap`] as it passes), then handed to the gateway (metrics, the
//! store). Exactly one record per request: every way out of a `Recorder` records, dropping it included.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{Extensions, HeaderMap, HeaderValue};
use http_body::{Frame, SizeHint};

use crate::accounts::LiveAccount;
use crate::common::ApiError;
use crate::config::ClientKey;
use crate::gateway::{Gateway, OwnCredential};
use crate::secrets::keys::AuthenticatedKey;
use crate::usage::{Attempt, ClientKind, CostBasis, FailoverReason, Outcome, RequestRecord, Route, UsageTap};

/// When and as what a request arrived: set by the HTTP layer's front layer as a request extension.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// The gateway's request id (`req_gw_…`).
    pub request_id: String,
    /// When the request arrived (latency is measured from here).
    pub at: Instant,
    /// The same moment on the gateway's clock, Unix ms (day and month buckets).
    pub at_ms: u64,
}

/// The status recorded for a request whose client went away before any answer.
const CLIENT_CLOSED: u16 = 499;

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// How the answer's body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Its last byte was handed to the client.
    Complete,
    /// Reading it from the upstream failed.
    Broken,
    /// The client went away first (or the request was dropped before an answer).
    Cancelled,
}

/// One request's record in the making. See the module docs.
#[derive(Debug)]
pub struct Recorder {
    gateway: Arc<Gateway>,
    record: Option<Box<RequestRecord>>,
    arrived: Instant,
    key: Option<Arc<ClientKey>>,
    /// The request's own Anthropic credential (kind and hash only), when it brought one.
    own: Option<OwnCredential>,
    tap: Option<UsageTap>,
    /// When the answer's head was handed over: the body's transfer counts as upstream time.
    delivered: Option<Instant>,
    /// The outcome decided before the body (an upstream failure passed on); else it follows from status and body.
    outcome: Option<Outcome>,
}

impl Recorder {
    /// Starts the record of a request on `route`: its arrival and authenticated key come from the request's
    /// extensions (set by the front and auth layers), the client kind from its headers.
    pub fn start(gateway: &Arc<Gateway>, route: Route, headers: &HeaderMap, extensions: &Extensions) -> Self {
        let (request_id, arrived, at_ms) = match extensions.get::<Arrival>() {
            Some(a) => (a.request_id.clone(), a.at, a.at_ms),
            None => (String::new(), Instant::now(), gateway.now_ms()),
        };
        let key = extensions.get::<AuthenticatedKey>().map(|k| k.0.clone());
        let mut record = RequestRecord::new(at_ms, request_id, route, ClientKind::detect(route, headers));
        record.client_key = key.as_ref().map(|k| k.name.clone());
        Self {
            gateway: gateway.clone(),
            record: Some(Box::new(record)),
            arrived,
            key,
            own: extensions.get::<OwnCredential>().cloned(),
            tap: None,
            delivered: None,
            outcome: None,
        }
    }

    /// The gateway the request runs on.
    pub(crate) fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }

    /// What kind of client sent the request (the one classification, made when the record started).
    pub(crate) fn client_kind(&self) -> ClientKind {
        self.record.as_ref().map_or(ClientKind::Other, |r| r.client_kind)
    }

    /// The request's own Anthropic credential (kind and hash), when it brought one to be forwarded.
    pub(crate) fn own_credential(&self) -> Option<&OwnCredential> {
        self.own.as_ref()
    }

    /// The client key the request authenticated with.
    pub(crate) fn key(&self) -> Option<&Arc<ClientKey>> {
        self.key.as_ref()
    }

    fn record(&mut self) -> Option<&mut RequestRecord> {
        self.record.as_deref_mut()
    }

    /// What the request asks for: the model (after OpenAI alias mapping), whether it streams, and the hash of its
    /// session key when the client names a session.
    pub(crate) fn request(&mut self, model: &str, stream: bool, session: Option<u64>) {
        if let Some(r) = self.record() {
            r.model_requested = Some(model.to_string());
            r.stream = stream;
            r.session = session;
        }
    }

    /// One upstream attempt on `account`, started at `started`: its status (none when no answer came) and, when
    /// the gateway moved on to another account, why. The last attempt's account is the one recorded.
    pub(crate) fn attempt(
        &mut self,
        account: &LiveAccount,
        status: Option<u16>,
        failover: Option<FailoverReason>,
        started: Instant,
    ) {
        let took = ms(started.elapsed());
        if let Some(r) = self.record() {
            r.upstream_ms = r.upstream_ms.saturating_add(took);
            r.account_id = Some(account.id().to_string());
            r.account_name = Some(account.name().to_string());
            r.cost_basis = CostBasis::for_account(account.kind());
            r.attempts.push(Attempt { account_id: account.id().to_string(), status, failover, ms: took });
        }
    }

    /// The request spilled over to an API-key account because its subscriptions were exhausted.
    pub(crate) fn spilled_over(&mut self) {
        if let Some(r) = self.record() {
            r.spillover = true;
        }
    }

    /// Answers with the gateway's own error (refused, nothing to try, upstream unreachable): recorded now.
    pub(crate) fn refuse(self, error: ApiError, outcome: Outcome) -> Delivery {
        Delivery { response: self.answered(error.into_response(), outcome), recorder: None }
    }

    /// Answers with a response the gateway made (sent in one piece): recorded now.
    pub(crate) fn answered(mut self, response: Response, outcome: Outcome) -> Response {
        if let Some(r) = self.record() {
            r.status = response.status().as_u16();
        }
        self.outcome = Some(outcome);
        self.complete(Ending::Complete);
        response
    }

    /// Answers with the upstream's answer: recorded when its body has gone to the client. `outcome` is set for an
    /// upstream failure passed on (every account failed); else it follows from the status and the body.
    pub(crate) fn deliver(mut self, response: Response, outcome: Option<Outcome>) -> Delivery {
        let headers = response.headers();
        let text = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
        // A gzip/deflate JSON answer is decoded for the tap only; the client gets the upstream's bytes.
        self.tap = Some(UsageTap::for_response(text(http::header::CONTENT_TYPE), text(http::header::CONTENT_ENCODING)));
        let status = response.status().as_u16();
        if let Some(r) = self.record() {
            r.status = status;
        }
        self.outcome = outcome;
        self.delivered = Some(Instant::now());
        Delivery { response, recorder: Some(self) }
    }

    /// Upstream bytes of the answer, in order (the OpenAI route converts them before they go out).
    pub(crate) fn observe(&mut self, bytes: &[u8]) {
        if let Some(tap) = &mut self.tap {
            tap.feed(bytes);
        }
    }

    /// Bytes went to the client.
    pub(crate) fn sent(&mut self) {
        let arrived = self.arrived;
        if let Some(r) = self.record()
            && r.first_byte_ms.is_none()
        {
            r.first_byte_ms = Some(ms(arrived.elapsed()));
        }
    }

    /// The answer's body has gone to the client in full.
    pub(crate) fn finish(mut self) {
        self.complete(Ending::Complete);
    }

    /// The client gets `status` after all: the OpenAI route replaced an answer it could not convert.
    pub(crate) fn set_status(&mut self, status: u16) {
        let changed = match self.record() {
            Some(r) if r.status != status => {
                r.status = status;
                true
            }
            _ => false,
        };
        if changed && !(200..300).contains(&status) {
            self.outcome.get_or_insert(Outcome::GatewayError);
        }
    }

    fn complete(&mut self, ending: Ending) {
        let Some(mut record) = self.record.take() else {
            return;
        };
        let now = Instant::now();
        record.latency_ms = ms(now.duration_since(self.arrived));
        if let Some(at) = self.delivered {
            record.upstream_ms = record.upstream_ms.saturating_add(ms(now.duration_since(at)));
        }
        if record.status == 0 {
            record.status = CLIENT_CLOSED;
        }
        let seen =
            self.tap.take().map(|tap| if ending == Ending::Complete { tap.finish() } else { tap.seen().clone() });
        let mut broken = false;
        if let Some(seen) = seen {
            record.tokens = seen.tokens;
            if seen.model.is_some() {
                record.model_answered = seen.model;
            }
            // A stream that ended without `message_stop` (and without an error event saying why) broke off.
            broken = seen.error.is_some() || (record.stream && !seen.complete && (200..300).contains(&record.status));
            record.stop_reason = seen.error.or(seen.stop_reason);
        }
        record.outcome = match ending {
            Ending::Cancelled => Outcome::ClientCancelled,
            Ending::Broken => Outcome::UpstreamError,
            Ending::Complete => self.outcome.unwrap_or_else(|| match Outcome::from_status(record.status) {
                Outcome::Ok if broken => Outcome::UpstreamError,
                o => o,
            }),
        };
        self.gateway.record_request(*record);
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        // Still unrecorded: the client went away (before the answer, or during its body).
        self.complete(Ending::Cancelled);
    }
}

/// How a request was answered: the response, and its record still open when the body has yet to go out.
#[derive(Debug)]
pub struct Delivery {
    pub(crate) response: Response,
    pub(crate) recorder: Option<Recorder>,
}

impl Delivery {
    /// The response as the client gets it: an upstream answer's body recorded as it passes.
    pub fn into_response(self) -> Response {
        match self.recorder {
            None => self.response,
            Some(recorder) => {
                let (parts, body) = self.response.into_parts();
                Response::from_parts(parts, Body::new(Recorded { inner: body, recorder }))
            }
        }
    }
}

/// A response body that feeds each chunk to the request's record as it goes to the client, and finishes the
/// record at its end (or, dropped early, as cancelled with what was seen). Nothing is held back; the size hint
/// (content length) is the inner body's.
#[derive(Debug)]
pub(crate) struct Recorded<B: http_body::Body> {
    inner: B,
    recorder: Recorder,
}

impl<B> http_body::Body for Recorded<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        let polled = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &polled {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    this.recorder.observe(data);
                    this.recorder.sent();
                }
                // A body of known length may not be polled again after its last byte.
                if this.inner.is_end_stream() {
                    this.recorder.complete(Ending::Complete);
                }
            }
            Some(Err(_)) => this.recorder.complete(Ending::Broken),
            None => this.recorder.complete(Ending::Complete),
        }
        Poll::Ready(polled)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for Recorded<B>
where
    B: http_body::Body,
{
    fn drop(&mut self) {
        // An empty body is never polled: it went out complete.
        if self.inner.is_end_stream() {
            self.recorder.complete(Ending::Complete);
        }
    }
}
