//! What an upstream answer means for routing: keep it, try another account, or hand it to the client.
//!
//! ## Which answers condemn the account (protocol.md §2–§3)
//! Marking an account `error` takes it out of service until someone runs `enable-account`, so only answers that
//! say the credential or its organisation is unusable for *every* request do it:
//! - 401 (`authentication_error`: invalid key, revoked token, missing OAuth beta, no JSON at all), except
//!   "OAuth token has expired" (the proxy has already refreshed and retried once; another account takes this
//!   request and the next one refreshes again) and "x-api-key header is required" (seen for OAuth tokens on some
//!   models only: about the request's model, not the login);
//! - 403 "OAuth authentication is currently not allowed for this organization" and 400/403 "This organization
//!   has been disabled." (a barred or disabled organisation), and a 403 whose error type is
//!   `authentication_error`.
//!
//! Any other 403 (`permission_error`: a model, beta or feature this key may not use) and any other 400 is about
//! the request: it goes back to the client as is, with no failover and nothing recorded against the account. The
//! status alone cannot tell these apart, so for 400/401/403 the caller reads the (small) error body first
//! ([`needs_body`], [`read_error_head`]) and passes it to [`classify`].

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt as _;
use http::{HeaderMap, StatusCode};

use crate::accounts::Observation;
use crate::accounts::windows::{has_rate_limit_headers, is_out_of_credits_only, rate_limit_until};

/// The classified outcome of one attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// 2xx: the answer goes to the client.
    Success,
    /// A client error (400, 403 `permission_error`, 404, 413, …): the answer goes to the client; it says nothing
    /// against the account.
    ClientError,
    /// The account cannot serve this now: record the observation and try the next account.
    RetryElsewhere {
        /// What to record on the account.
        observation: Observation,
        /// For the attempt log, e.g. "429 rate limited until 14:05:00 UTC".
        reason: String,
    },
    /// The upstream refused the account's credential or organisation (see the module doc): mark it `error` and
    /// try the next account.
    CredentialRejected,
}

/// Whether [`classify`] needs the error body to judge this status (400, 401, 403): the status alone does not say
/// whether the credential or the request is at fault.
pub fn needs_body(status: StatusCode) -> bool {
    matches!(status.as_u16(), 400 | 401 | 403)
}

/// Classifies a response by status, headers and, for the statuses of [`needs_body`], the start of its error
/// body (`None` when it was not read: a 401 then counts as a rejected credential, a 400/403 as a client error).
/// `now_ms` and `max_cooldown_ms` bound rate-limit benches.
pub fn classify(
    status: StatusCode,
    headers: &HeaderMap,
    error_body: Option<&[u8]>,
    now_ms: u64,
    max_cooldown_ms: u64,
) -> Verdict {
    match status.as_u16() {
        200..=299 => Verdict::Success,
        400 | 401 | 403 => classify_refusal(status.as_u16(), error_body.map(ErrorFields::parse).unwrap_or_default()),
        429 => {
            if !has_rate_limit_headers(headers) {
                return Verdict::RetryElsewhere {
                    observation: Observation::Windowless,
                    reason: "429 without rate-limit headers (request-scoped; account not benched)".into(),
                };
            }
            if is_out_of_credits_only(headers) {
                return Verdict::RetryElsewhere {
                    observation: Observation::Windowless,
                    reason: "429 extra-usage credits exhausted (model-scoped; account not benched)".into(),
                };
            }
            match rate_limit_until(headers, now_ms, max_cooldown_ms) {
                Some(until_ms) => Verdict::RetryElsewhere {
                    observation: Observation::RateLimited { until_ms },
                    reason: format!("429 rate limited until {}", crate::clock::hh_mm(until_ms)),
                },
                None => Verdict::RetryElsewhere {
                    observation: Observation::Windowless,
                    reason: "429 with no future reset time (account not benched)".into(),
                },
            }
        }
        529 => Verdict::RetryElsewhere { observation: Observation::Overloaded, reason: "529 overloaded".into() },
        500 | 502 | 503 | 504 => Verdict::RetryElsewhere {
            observation: Observation::Failed,
            reason: format!("{} from the upstream", status.as_u16()),
        },
        _ => Verdict::ClientError,
    }
}

/// Messages (lowercase fragments) that mean the account's organisation cannot use the API at all.
const ORGANIZATION_BARRED: [&str; 2] = ["not allowed for this organization", "organization has been disabled"];
/// A 401 the proxy answers by refreshing the OAuth token (protocol.md §3).
const TOKEN_EXPIRED: &str = "token has expired";
/// A 401 some models give OAuth tokens (protocol.md §2): about the model, not the login.
const MODEL_NEEDS_API_KEY: &str = "x-api-key header is required";

/// The rules of the module doc for 400, 401 and 403.
fn classify_refusal(status: u16, error: ErrorFields) -> Verdict {
    let message = error.message.to_ascii_lowercase();
    let barred = ORGANIZATION_BARRED.iter().any(|m| message.contains(m));
    match status {
        401 if message.contains(TOKEN_EXPIRED) => Verdict::RetryElsewhere {
            observation: Observation::Failed,
            reason: "401 OAuth token expired even after a refresh".into(),
        },
        401 if message.contains(MODEL_NEEDS_API_KEY) => Verdict::ClientError,
        401 => Verdict::CredentialRejected,
        403 if barred || error.kind == "authentication_error" => Verdict::CredentialRejected,
        400 if barred => Verdict::CredentialRejected,
        _ => Verdict::ClientError,
    }
}

/// `error.type` and `error.message` of an Anthropic error body; empty when the body is not one.
#[derive(Debug, Default)]
struct ErrorFields {
    kind: String,
    message: String,
}

impl ErrorFields {
    fn parse(body: &[u8]) -> Self {
        #[derive(serde::Deserialize)]
        struct Envelope {
            error: Inner,
        }
        #[derive(Default, serde::Deserialize)]
        struct Inner {
            #[serde(default, rename = "type")]
            kind: String,
            #[serde(default)]
            message: String,
        }
        let inner = serde_json::from_slice::<Envelope>(body).map(|e| e.error).unwrap_or_default();
        Self { kind: inner.kind, message: inner.message }
    }
}

/// Reads the start of an error body (at least `cap` bytes unless it ends sooner) for [`classify`], and gives back
/// the response with its body intact: the bytes read, then the rest as it arrives, so an answer that goes to the
/// client is still exactly the upstream's.
pub async fn read_error_head(mut response: reqwest::Response, cap: usize) -> (Bytes, reqwest::Response) {
    let mut head = BytesMut::new();
    let mut ended = false;
    let mut failure = None;
    while head.len() < cap {
        match response.chunk().await {
            Ok(Some(chunk)) => head.extend_from_slice(&chunk),
            Ok(None) => {
                ended = true;
                break;
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let head = head.freeze();
    let (parts, rest) = http::Response::from(response).into_parts();
    let body = if ended {
        reqwest::Body::from(head.clone())
    } else {
        let first = futures_util::stream::iter([Ok(head.clone())]);
        match failure {
            Some(e) => reqwest::Body::wrap_stream(first.chain(futures_util::stream::iter([Err(e)]))),
            None => reqwest::Body::wrap_stream(first.chain(http_body_util::BodyDataStream::new(rest))),
        }
    };
    (head, reqwest::Response::from(http::Response::from_parts(parts, body)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn error(kind: &str, message: &str) -> Vec<u8> {
        serde_json::json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_1"})
            .to_string()
            .into_bytes()
    }

    fn judge(status: u16, body: &[u8]) -> Verdict {
        classify(StatusCode::from_u16(status).unwrap(), &HeaderMap::new(), Some(body), 0, 1)
    }

    #[test]
    fn statuses_map_to_verdicts() {
        let h = HeaderMap::new();
        assert_eq!(classify(StatusCode::OK, &h, None, 0, 1), Verdict::Success);
        assert_eq!(classify(StatusCode::BAD_REQUEST, &h, None, 0, 1), Verdict::ClientError);
        assert_eq!(classify(StatusCode::PAYLOAD_TOO_LARGE, &h, None, 0, 1), Verdict::ClientError);
        assert_eq!(classify(StatusCode::UNAUTHORIZED, &h, None, 0, 1), Verdict::CredentialRejected);
        assert_eq!(classify(StatusCode::FORBIDDEN, &h, None, 0, 1), Verdict::ClientError);
        assert!(matches!(
            classify(StatusCode::from_u16(529).unwrap(), &h, None, 0, 1),
            Verdict::RetryElsewhere { observation: Observation::Overloaded, .. }
        ));
        assert!(matches!(
            classify(StatusCode::BAD_GATEWAY, &h, None, 0, 1),
            Verdict::RetryElsewhere { observation: Observation::Failed, .. }
        ));
        assert!(needs_body(StatusCode::FORBIDDEN) && needs_body(StatusCode::UNAUTHORIZED));
        assert!(!needs_body(StatusCode::TOO_MANY_REQUESTS) && !needs_body(StatusCode::OK));
    }

    #[test]
    fn request_scoped_403_is_a_client_error_not_a_rejected_credential() {
        for message in [
            "Your API key does not have permission to use the specified resource.",
            "This model is not available for your account.",
            "The beta `context-1m-2025-08-07` is not enabled for this organization.",
        ] {
            assert_eq!(judge(403, &error("permission_error", message)), Verdict::ClientError, "{message}");
        }
        assert_eq!(judge(403, b"<html>403 Forbidden</html>"), Verdict::ClientError, "not Anthropic's error JSON");
        assert_eq!(judge(403, b""), Verdict::ClientError);
    }

    #[test]
    fn barred_or_disabled_organisations_reject_the_credential() {
        let banned = error("permission_error", "OAuth authentication is currently not allowed for this organization");
        assert_eq!(judge(403, &banned), Verdict::CredentialRejected);
        let disabled = error("invalid_request_error", "This organization has been disabled.");
        assert_eq!(judge(400, &disabled), Verdict::CredentialRejected);
        assert_eq!(
            judge(403, &error("permission_error", "This organization has been disabled.")),
            Verdict::CredentialRejected
        );
        assert_eq!(judge(403, &error("authentication_error", "invalid credential")), Verdict::CredentialRejected);
        assert_eq!(judge(400, &error("invalid_request_error", "prompt is too long")), Verdict::ClientError);
        let extra_usage = error("invalid_request_error", "You have run out of extra usage.");
        assert_eq!(judge(400, &extra_usage), Verdict::ClientError, "protocol.md §2: never bench on extra usage");
    }

    #[test]
    fn a_401_rejects_the_credential_unless_it_is_about_expiry_or_the_model() {
        assert_eq!(judge(401, &error("authentication_error", "invalid x-api-key")), Verdict::CredentialRejected);
        let no_beta = error("authentication_error", "OAuth authentication is currently not supported.");
        assert_eq!(judge(401, &no_beta), Verdict::CredentialRejected);
        assert_eq!(judge(401, b"Unauthorized"), Verdict::CredentialRejected, "no JSON: the status speaks");
        let expired = error(
            "authentication_error",
            "OAuth token has expired. Please obtain a new token or refresh your existing token.",
        );
        assert!(matches!(judge(401, &expired), Verdict::RetryElsewhere { observation: Observation::Failed, .. }));
        let model = error("authentication_error", "x-api-key header is required");
        assert_eq!(judge(401, &model), Verdict::ClientError);
    }

    #[test]
    fn windowless_429_is_not_benched_and_windowed_is() {
        let mut h = HeaderMap::new();
        h.insert("x-should-retry", HeaderValue::from_static("true"));
        assert!(matches!(
            classify(StatusCode::TOO_MANY_REQUESTS, &h, None, 0, 1),
            Verdict::RetryElsewhere { observation: Observation::Windowless, .. }
        ));
        h.insert("retry-after", HeaderValue::from_static("30"));
        assert!(matches!(
            classify(StatusCode::TOO_MANY_REQUESTS, &h, None, 1_000, 86_400_000),
            Verdict::RetryElsewhere { observation: Observation::RateLimited { until_ms: 31_000 }, .. }
        ));
    }

    fn response(status: u16, chunks: Vec<&'static [u8]>) -> reqwest::Response {
        let stream =
            futures_util::stream::iter(chunks.into_iter().map(|c| Ok::<_, std::io::Error>(Bytes::from_static(c))));
        let mut r = http::Response::new(reqwest::Body::wrap_stream(stream));
        *r.status_mut() = StatusCode::from_u16(status).unwrap();
        r.headers_mut().insert("request-id", HeaderValue::from_static("req_1"));
        reqwest::Response::from(r)
    }

    #[tokio::test]
    async fn reading_the_error_head_keeps_the_whole_body_for_the_client() {
        let (head, rest) = read_error_head(response(403, vec![b"abc", b"def"]), 1024).await;
        assert_eq!(&head[..], b"abcdef");
        assert_eq!(rest.status(), 403);
        assert_eq!(rest.headers()["request-id"], "req_1");
        assert_eq!(&rest.bytes().await.unwrap()[..], b"abcdef");

        // Past the cap: the head stops early and the rest still follows it.
        let (head, rest) = read_error_head(response(400, vec![b"abc", b"def", b"ghi"]), 4).await;
        assert_eq!(&head[..], b"abcdef");
        assert_eq!(&rest.bytes().await.unwrap()[..], b"abcdefghi");
    }
}
