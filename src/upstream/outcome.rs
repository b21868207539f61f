//! What an upstream answer means for routing: keep it, try another account, or hand it to the client.

use http::{HeaderMap, StatusCode};

use crate::accounts::Observation;
use crate::accounts::windows::{has_rate_limit_headers, is_out_of_credits_only, rate_limit_until};

/// The classified outcome of one attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// 2xx: the answer goes to the client.
    Success,
    /// A client error (400, 404, 413, …): the answer goes to the client; it says nothing against the account.
    ClientError,
    /// The account cannot serve this now: record the observation and try the next account.
    RetryElsewhere {
        /// What to record on the account.
        observation: Observation,
        /// For the attempt log, e.g. "429 rate limited until 14:05:00 UTC".
        reason: String,
    },
    /// 401/403: the account's credential was refused. Mark it and try the next account.
    CredentialRejected,
}

/// Classifies a response by status and headers. `now_ms` and `max_cooldown_ms` bound rate-limit benches.
pub fn classify(status: StatusCode, headers: &HeaderMap, now_ms: u64, max_cooldown_ms: u64) -> Verdict {
    match status.as_u16() {
        200..=299 => Verdict::Success,
        401 | 403 => Verdict::CredentialRejected,
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

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn statuses_map_to_verdicts() {
        let h = HeaderMap::new();
        assert_eq!(classify(StatusCode::OK, &h, 0, 1), Verdict::Success);
        assert_eq!(classify(StatusCode::BAD_REQUEST, &h, 0, 1), Verdict::ClientError);
        assert_eq!(classify(StatusCode::PAYLOAD_TOO_LARGE, &h, 0, 1), Verdict::ClientError);
        assert_eq!(classify(StatusCode::UNAUTHORIZED, &h, 0, 1), Verdict::CredentialRejected);
        assert!(matches!(
            classify(StatusCode::from_u16(529).unwrap(), &h, 0, 1),
            Verdict::RetryElsewhere { observation: Observation::Overloaded, .. }
        ));
        assert!(matches!(
            classify(StatusCode::BAD_GATEWAY, &h, 0, 1),
            Verdict::RetryElsewhere { observation: Observation::Failed, .. }
        ));
    }

    #[test]
    fn windowless_429_is_not_benched_and_windowed_is() {
        let mut h = HeaderMap::new();
        h.insert("x-should-retry", HeaderValue::from_static("true"));
        assert!(matches!(
            classify(StatusCode::TOO_MANY_REQUESTS, &h, 0, 1),
            Verdict::RetryElsewhere { observation: Observation::Windowless, .. }
        ));
        h.insert("retry-after", HeaderValue::from_static("30"));
        assert!(matches!(
            classify(StatusCode::TOO_MANY_REQUESTS, &h, 1_000, 86_400_000),
            Verdict::RetryElsewhere { observation: Observation::RateLimited { until_ms: 31_000 }, .. }
        ));
    }
}
