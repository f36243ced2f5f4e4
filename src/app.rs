//! Assembles the actix App and server from state. Binds its own listener, so port 0 works.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
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
    /// The discovery document, rendered once (shared, not copied, by every response).
    pub discovery: bytes::Bytes,
    pub authlog: AuthLog,
    /// The admin listener's address when the listeners are split (`http::listeners`).
    pub admin_addr: Option<SocketAddr>,
    /// The console's used one-time form ids (`ui::admin::OnceForms`).
    pub console_forms: crate::ui::admin::OnceForms,
}

impl AppState {
    pub fn new(config: Config, store: Store, keys: Arc<KeyRing>, admin_hash: [u8; 32]) -> AppState {
        let algs: Vec<&str> = keys.id_token_algorithms();
        let discovery = bytes::Bytes::from(http::discovery_document(&config.issuer, &algs).to_string());
        AppState {
            config,
            store,
            keys,
            admin_hash,
            metrics: Metrics::new(),
            discovery,
            authlog: AuthLog::default(),
            admin_addr: None,
            console_forms: Default::default(),
        }
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

/// The sockets to serve on: the public one, the admin one when the listeners are split
/// (`JOBTOKEN_ADMIN_BIND`), and the TLS configuration both use when HTTPS is on.
pub struct Listeners {
    pub public: TcpListener,
    pub admin: Option<TcpListener>,
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl From<TcpListener> for Listeners {
    fn from(public: TcpListener) -> Listeners {
        Listeners { public, admin: None, tls: None }
    }
}

/// Builds the HTTP server on `listeners`. Starts the key maintenance tick as well.
pub fn build(mut state: AppState, listeners: impl Into<Listeners>) -> std::io::Result<Running> {
    let Listeners { public, admin, tls } = listeners.into();
    let port = public.local_addr()?.port();
    state.admin_addr = admin.as_ref().map(TcpListener::local_addr).transpose()?;
    let split = state.admin_addr.is_some();
    let workers = state.config.workers;
    let state = web::Data::new(state);
    spawn_key_tick(state.clone());
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .configure(http::extractors)
            .configure(http::routes)
            .default_service(web::to(http::not_found))
            // Inside the access wrapper, so refused requests are measured and logged too.
            .wrap(middleware::from_fn(http::auth::authenticate_api))
            .wrap(middleware::from_fn(crate::ui::headers))
            // Before authentication: a route the listener does not serve is a 404 to anyone.
            .wrap(middleware::Condition::new(split, middleware::from_fn(http::listeners::split)))
            .wrap_fn(http::access::observe)
    })
    .workers(workers)
    .backlog(2048)
    .shutdown_timeout(10);
    for listener in std::iter::once(public).chain(admin) {
        server = match &tls {
            Some(config) => server.listen_rustls_0_23(listener, (**config).clone())?,
            None => server.listen(listener)?,
        };
    }
    Ok(Running { server: server.run(), port })
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
