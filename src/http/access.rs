//! Around every request: the `X-Request-Id` (honoured when sane, else a new UUID v4, echoed on
//! every response), the latency histogram, and one access-log line (target `jobtoken::access`)
//! with the request id, method, route pattern, path (never the query string, which may carry
//! a token), status, latency, the authenticated caller (never a credential) and the peer.

use std::future::Future;
use std::time::Instant;

use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::{web, HttpMessage, HttpRequest};

use crate::app::AppState;
use crate::logging::ACCESS_TARGET;

/// The request id header, in and out.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest incoming request id honoured.
const MAX_REQUEST_ID: usize = 128;

/// Who a request authenticated as, for the access log: a public identifier, never a secret.
#[derive(Debug, Clone)]
pub enum Who {
    Admin,
    /// A user, by personal access token.
    User(crate::domain::UserId),
    /// An OAuth client (runner or resource server), by its client id.
    Client(String),
}

impl std::fmt::Display for Who {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Who::Admin => f.write_str("admin"),
            Who::User(id) => write!(f, "user:{id}"),
            Who::Client(client_id) => f.write_str(client_id),
        }
    }
}

/// Notes the authenticated caller for the access log (call once the credential was accepted).
pub fn record(req: &HttpRequest, who: Who) {
    req.extensions_mut().insert(who);
}

/// An incoming request id when it is 1–128 visible ASCII characters, else a new UUID v4.
fn request_id(headers: &HeaderMap) -> HeaderValue {
    if let Some(value) = headers.get(&X_REQUEST_ID) {
        let bytes = value.as_bytes();
        if !bytes.is_empty() && bytes.len() <= MAX_REQUEST_ID && bytes.iter().all(|b| b.is_ascii_graphic()) {
            return value.clone();
        }
    }
    let mut buf = uuid::Uuid::encode_buffer();
    let text = new_request_id().hyphenated().encode_lower(&mut buf);
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// A fresh UUID v4 for a request without a usable id. Request ids label log lines, they guard
/// nothing, so they come from a per-thread SplitMix64 stream seeded once from the OS instead
/// of a `getrandom` system call per request.
fn new_request_id() -> uuid::Uuid {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(u64::from_le_bytes(uuid::Uuid::new_v4().as_bytes()[..8].try_into().unwrap_or_default()));
    }
    fn next(state: &Cell<u64>) -> u64 {
        let mut z = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        state.set(z);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    let (high, low) = STATE.with(|s| (next(s), next(s)));
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&high.to_le_bytes());
    bytes[8..].copy_from_slice(&low.to_le_bytes());
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// The middleware (`App::wrap_fn(access::observe)`), outermost so refused requests are seen too.
pub fn observe<S, B>(
    req: ServiceRequest,
    srv: &S,
) -> impl Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + 'static
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
    B: 'static,
{
    let started = Instant::now();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let route = req.match_pattern();
    let id = request_id(req.headers());
    let method = req.method().clone();
    let logged = state.as_ref().is_some_and(|s| s.config.access_log)
        && log::log_enabled!(target: ACCESS_TARGET, log::Level::Info);
    // Only when a line is written: the path without its query, and the peer.
    let seen = logged.then(|| (req.path().to_owned(), req.peer_addr()));
    let fut = srv.call(req);
    async move {
        let mut res = fut.await?;
        let elapsed = started.elapsed();
        let status = res.status();
        let route = route.as_deref().unwrap_or("unmatched");
        if let Some(state) = &state {
            state
                .metrics
                .request_duration
                .with_label_values(&[method.as_str(), route, status.as_str()])
                .observe(elapsed.as_secs_f64());
        }
        if let Some((path, peer)) = seen {
            let who = res.request().extensions().get::<Who>().map(Who::to_string);
            let client = who.as_deref().unwrap_or("-");
            let remote = peer.map(|p| p.to_string());
            let latency_ms = (elapsed.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0;
            log::info!(
                target: ACCESS_TARGET,
                request_id = id.to_str().unwrap_or("-"),
                method = method.as_str(),
                route = route,
                path = path.as_str(),
                status = status.as_u16(),
                latency_ms = latency_ms,
                client = client,
                remote = remote.as_deref().unwrap_or("-");
                "{} {} {} {latency_ms}ms",
                method,
                path,
                status.as_u16()
            );
        }
        res.headers_mut().insert(X_REQUEST_ID.clone(), id);
        Ok(res)
    }
}
