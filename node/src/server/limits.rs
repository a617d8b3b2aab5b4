//! Per-client-IP rate limits on the public listener: a token bucket per address, and a `429` with `Retry-After` in the shape of the surface asked (OAuth error, portal page, node API error). The unified API is limited per app instead, after its proof verifies.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use consentnet_bank_adapter::limits::{Rate, TokenBuckets, retry_after_secs};

use crate::api::{ApiCode, ApiError};
use crate::portal::html::refusal_page;
use crate::portal::oauth::{OAuthCode, OAuthError};

/// The public listener's per-IP buckets.
#[derive(Debug)]
pub struct IpLimits {
    /// Each address's rate.
    pub rate: Rate,
    buckets: TokenBuckets<IpAddr>,
}

impl IpLimits {
    /// Limits of `rate` per client IP.
    pub fn new(rate: Rate) -> Arc<Self> {
        Arc::new(Self {
            rate,
            buckets: TokenBuckets::default(),
        })
    }
}

/// Which surface a path belongs to, for the shape of its refusal.
enum Surface {
    UnifiedApi,
    OAuth,
    Page,
    NodeApi,
}

fn surface(path: &str) -> Surface {
    if path.starts_with("/open-banking/") {
        Surface::UnifiedApi
    } else if path.starts_with("/oauth/") || path.starts_with("/.well-known/oauth-") {
        Surface::OAuth
    } else if path.starts_with("/portal") {
        Surface::Page
    } else {
        Surface::NodeApi
    }
}

/// Whom an address's limits count against: an IPv4 address itself (also when it arrives
/// IPv4-mapped), and for IPv6 its /64 network, the block one subscriber is given, so one
/// client cannot spread over many buckets or connection slots by changing its low bits.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let network = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(network.into())
            }
        },
    }
}

/// The middleware: takes a token from the client address's bucket, or refuses.
pub async fn per_ip(State(limits): State<Arc<IpLimits>>, request: Request, next: Next) -> Response {
    let kind = surface(request.uri().path());
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| client_key(peer.ip()));
    let (Some(ip), false) = (peer, matches!(kind, Surface::UnifiedApi)) else {
        return next.run(request).await;
    };
    match limits.buckets.take(&ip, limits.rate, Instant::now()) {
        Ok(()) => next.run(request).await,
        Err(wait) => refusal(kind, retry_after_secs(wait), limits.rate),
    }
}

fn refusal(kind: Surface, seconds: u64, rate: Rate) -> Response {
    let message = format!(
        "this address is over its rate ({} requests/s, burst {}); try again in {seconds} s",
        rate.per_second, rate.burst
    );
    let mut response = match kind {
        Surface::OAuth => OAuthError::new(OAuthCode::SlowDown, message).into_response(),
        Surface::Page => refusal_page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests",
            "rate_limited",
            &message,
            "",
        ),
        Surface::NodeApi | Surface::UnifiedApi => {
            ApiError::new(ApiCode::RateLimited, message).into_response()
        }
    };
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_ipv6_client_counts_as_its_64_and_ipv4_as_itself() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(other));
        let v4: IpAddr = [10, 0, 0, 1].into();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(client_key(v4), v4);
        assert_eq!(client_key(mapped), v4);
    }
}
