//! The node's HTTP API: the router, its handlers and the one error type they answer with.

use axum::{
    Json, Router,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use serde::Serialize;

/// What a node reports about itself on `GET /status`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NodeStatus {
    /// The node software's version.
    pub version: &'static str,
    /// Peers currently connected. No replication runs yet, so this is always 0.
    pub peers: usize,
    /// Entries held in the local log. No log exists yet, so this is always 0.
    pub log_entries: u64,
}

impl NodeStatus {
    /// The status of a node that holds no log and has no peers.
    pub fn empty() -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION"),
            peers: 0,
            log_entries: 0,
        }
    }
}

/// An API error: an HTTP status plus a machine-readable code and a message for people.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// The error returned for any path the API does not serve.
    pub fn not_found(path: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: format!("no such endpoint: {path}"),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code,
            message: &self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

/// Builds the node's router. It holds no socket, so tests drive it with `oneshot`.
pub fn app() -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/status", get(status))
        .fallback(fallback)
}

async fn healthz() -> &'static str {
    "ok"
}

async fn status() -> Json<NodeStatus> {
    Json(NodeStatus::empty())
}

async fn fallback(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(uri.path())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get_path(path: &str) -> (StatusCode, Vec<u8>) {
        let response = app()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, body.to_vec())
    }

    #[tokio::test]
    async fn healthz_answers_ok() {
        let (status, body) = get_path("/healthz").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, b"ok");
    }

    #[tokio::test]
    async fn status_reports_an_empty_node() {
        let (status, body) = get_path("/status").await;
        assert_eq!(status, StatusCode::OK);
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(json["peers"], 0);
        assert_eq!(json["log_entries"], 0);
    }

    #[tokio::test]
    async fn unknown_path_is_a_404_with_a_code() {
        let (status, body) = get_path("/no/such/thing").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["code"], "not_found");
        assert_eq!(json["message"], "no such endpoint: /no/such/thing");
    }
}
