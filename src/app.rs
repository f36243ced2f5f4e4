//! Assembles the actix App and server from state. Binds its own listener, so port 0 works.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::{Server, Service};
use actix_web::{middleware, web, App, HttpServer};

use crate::config::Config;
use crate::http;
use crate::metrics::Metrics;
use crate::service::authlog::AuthLog;
use crate::service::{now, Deps};
use crate::signing::KeyRing;
use crate::store::Store;

/// Everything a handler can reach, shared through `web::Data`.
pub struct AppState {
    pub config: Config,
    pub store: Store,
    pub keys: Arc<KeyRing>,
    /// SHA-256 of the admin token.
    pub admin_hash: [u8; 32],
    pub metrics: Metrics,
    /// The discovery document, rendered once.
    pub discovery: Vec<u8>,
    pub authlog: AuthLog,
}

impl AppState {
    pub fn new(config: Config, store: Store, keys: Arc<KeyRing>, admin_hash: [u8; 32]) -> AppState {
        let algs: Vec<&str> = keys.algorithms();
        let discovery = http::discovery_document(&config.issuer, &algs).to_string().into_bytes();
        AppState { config, store, keys, admin_hash, metrics: Metrics::new(), discovery, authlog: AuthLog::default() }
    }

    /// What the token use cases borrow from the state.
    pub fn deps(&self) -> Deps<'_> {
        Deps {
            store: &self.store,
            keys: &self.keys,
            config: &self.config,
            metrics: &self.metrics,
            authlog: &self.authlog,
        }
    }
}

/// A server bound and ready to run, with the address it listens on.
pub struct Running {
    pub server: Server,
    pub port: u16,
}

/// Builds the HTTP server on `listener`. Starts the key maintenance tick as well.
pub fn build(state: AppState, listener: TcpListener) -> std::io::Result<Running> {
    let port = listener.local_addr()?.port();
    let workers = state.config.workers;
    let state = web::Data::new(state);
    spawn_key_tick(state.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .configure(http::extractors)
            .configure(http::routes)
            .default_service(web::to(http::not_found))
            // Inside the metrics wrapper, so refused requests are measured too.
            .wrap(middleware::from_fn(http::auth::authenticate_api))
            .wrap_fn(|req, srv| {
                let started = Instant::now();
                let method = req.method().to_string();
                let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
                let metrics = req.app_data::<web::Data<AppState>>().map(|s| s.metrics.clone());
                let fut = srv.call(req);
                async move {
                    let res = fut.await?;
                    if let Some(m) = metrics {
                        let status = res.status().as_u16().to_string();
                        m.request_duration
                            .with_label_values(&[method.as_str(), route.as_str(), status.as_str()])
                            .observe(started.elapsed().as_secs_f64());
                    }
                    Ok(res)
                }
            })
    })
    .workers(workers)
    .backlog(2048)
    .shutdown_timeout(10)
    .listen(listener)?
    .run();
    Ok(Running { server, port })
}

/// Every key tick (a minute; `JOBTOKEN_KEY_TICK_SECONDS` shortens it for tests): apply scheduled
/// rotation, drop retired keys no token needs any more, and pick up key changes made by another
/// process (`jobtoken keys rotate`, `keys set-algorithm`, a replica).
fn spawn_key_tick(state: web::Data<AppState>) {
    actix_web::rt::spawn(async move {
        let period = Duration::from_secs(state.config.key_tick_secs);
        let mut tick = actix_web::rt::time::interval_at(actix_web::rt::time::Instant::now() + period, period);
        loop {
            tick.tick().await;
            if let Err(e) = state.keys.tick(&state.store, now()).await {
                log::error!("key maintenance failed: {e}");
            }
        }
    });
}
