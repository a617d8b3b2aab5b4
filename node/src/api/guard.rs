//! Gates in front of the handlers: the operator listener's admin token when it is reachable from other machines, and JSON only for submissions (every `POST`).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use consentnet_bank_adapter::api::is_json;
use consentnet_identity::util::constant_time_eq;

use super::{ApiCode, ApiError};

/// Wraps `router` so that every request must carry `token`, as `x-admin-token` or as
/// `Authorization: Bearer`; any other gets `401 admin_token_invalid` and reaches nothing.
pub fn require_admin_token(router: Router, token: String) -> Router {
    router.layer(middleware::from_fn_with_state(
        Arc::<str>::from(token),
        check,
    ))
}

async fn check(State(token): State<Arc<str>>, request: Request, next: Next) -> Response {
    if presented(request.headers())
        .is_some_and(|given| constant_time_eq(given.as_bytes(), token.as_bytes()))
    {
        next.run(request).await
    } else {
        ApiError::new(
            ApiCode::AdminTokenInvalid,
            "this operator listener is reachable from other machines: send the admin token in x-admin-token",
        )
        .into_response()
    }
}

fn presented(headers: &HeaderMap) -> Option<&str> {
    if let Some(token) = headers.get("x-admin-token") {
        return token.to_str().ok();
    }
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// Submissions are JSON: a `POST` whose `Content-Type` is not `application/json` gets
/// `415 unsupported_media_type` before its body is read.
pub(super) async fn json_only(request: Request, next: Next) -> Response {
    if request.method() == axum::http::Method::POST && !is_json(request.headers()) {
        return ApiError::new(
            ApiCode::UnsupportedMediaType,
            "send the body as Content-Type: application/json",
        )
        .into_response();
    }
    next.run(request).await
}
