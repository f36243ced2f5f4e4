//! The two error shapes at the HTTP edge: RFC 6749 §5.2 on `/oauth/*`, `{error, message}` elsewhere.
//!
//! Clients get a fixed, safe sentence; causes of internal errors go to the log only.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, HttpResponseBuilder, ResponseError};
use serde::Serialize;

use crate::store::StoreError;

/// An error of the JSON API.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("valid credentials for this route are required: the admin token, a personal access token, or a client's HTTP Basic credentials where the route accepts clients")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// A known path with a method it does not have; the message lists the allowed ones.
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The database cannot be reached right now; the cause is logged, the client may retry.
    #[error("the database is unavailable; try again shortly")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

#[derive(Serialize)]
struct ApiErrorBody<'a> {
    error: &'a str,
    message: String,
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "invalid_request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::Unprocessable(_) => "unprocessable",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let message = match self {
            ApiError::Internal(cause) => {
                log::error!("internal error: {cause}");
                "the server could not complete the request".to_owned()
            }
            ApiError::Unavailable(cause) => {
                log::warn!("database unavailable: {cause}");
                self.to_string()
            }
            other => other.to_string(),
        };
        let mut res = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::Unauthorized) {
            res.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"jobtoken\""));
        }
        res.json(ApiErrorBody { error: self.code(), message })
    }
}

/// A `sub` that would be too long is the client's to fix: 400 with the sentence.
impl From<crate::service::id_token_sub::SubCheckError> for ApiError {
    fn from(e: crate::service::id_token_sub::SubCheckError) -> Self {
        match e {
            crate::service::id_token_sub::SubCheckError::TooLong(e) => ApiError::BadRequest(e.to_string()),
            crate::service::id_token_sub::SubCheckError::Store(e) => e.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ApiError::NotFound(m),
            StoreError::Conflict(m) => ApiError::Conflict(m),
            StoreError::Invalid(m) => ApiError::Unprocessable(m),
            StoreError::Unavailable(cause) => ApiError::Unavailable(cause),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// RFC 6749 §5.2 error codes (plus RFC 8693's `invalid_target`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    InvalidScope,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidTarget,
    ServerError,
    TemporarilyUnavailable,
}

impl OAuthCode {
    pub fn as_str(self) -> &'static str {
        match self {
            OAuthCode::InvalidRequest => "invalid_request",
            OAuthCode::InvalidClient => "invalid_client",
            OAuthCode::InvalidGrant => "invalid_grant",
            OAuthCode::InvalidScope => "invalid_scope",
            OAuthCode::UnauthorizedClient => "unauthorized_client",
            OAuthCode::UnsupportedGrantType => "unsupported_grant_type",
            OAuthCode::InvalidTarget => "invalid_target",
            OAuthCode::ServerError => "server_error",
            OAuthCode::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

/// An error of the OAuth endpoints.
#[derive(Debug, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub struct OAuthError {
    pub code: OAuthCode,
    pub description: String,
    /// Status override (413 for oversized bodies); otherwise derived from the code.
    pub status: Option<StatusCode>,
}

impl OAuthError {
    pub fn new(code: OAuthCode, description: impl Into<String>) -> OAuthError {
        OAuthError { code, description: description.into(), status: None }
    }

    pub fn invalid_request(description: impl Into<String>) -> OAuthError {
        OAuthError::new(OAuthCode::InvalidRequest, description)
    }

    pub fn invalid_client() -> OAuthError {
        OAuthError::new(OAuthCode::InvalidClient, "client authentication failed")
    }

    pub fn invalid_grant(description: impl Into<String>) -> OAuthError {
        OAuthError::new(OAuthCode::InvalidGrant, description)
    }

    pub fn too_large(limit: usize) -> OAuthError {
        OAuthError {
            status: Some(StatusCode::PAYLOAD_TOO_LARGE),
            ..OAuthError::invalid_request(format!("the request body is larger than {limit} bytes"))
        }
    }

    pub fn server_error(cause: impl std::fmt::Display) -> OAuthError {
        log::error!("internal error: {cause}");
        OAuthError::new(OAuthCode::ServerError, "the server could not complete the request")
    }
}

/// Marks a response as never to be cached (RFC 6749 §5.1): every `/oauth/*` answer, success or
/// error, carries a token, a secret's verdict or an error about one.
pub fn no_store(res: &mut HttpResponseBuilder) -> &mut HttpResponseBuilder {
    res.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .insert_header((header::PRAGMA, HeaderValue::from_static("no-cache")))
}

#[derive(Serialize)]
struct OAuthErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        self.status.unwrap_or(match self.code {
            OAuthCode::InvalidClient => StatusCode::UNAUTHORIZED,
            OAuthCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            OAuthCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        })
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        no_store(&mut res);
        if self.code == OAuthCode::InvalidClient {
            res.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"jobtoken\""));
        }
        res.json(OAuthErrorBody { error: self.code.as_str(), error_description: &self.description })
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(cause) => {
                log::warn!("database unavailable: {cause}");
                OAuthError::new(OAuthCode::TemporarilyUnavailable, "the database is unavailable; try again shortly")
            }
            other => OAuthError::server_error(other),
        }
    }
}
