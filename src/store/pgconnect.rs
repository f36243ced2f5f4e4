//! How jobtoken reaches PostgreSQL: the libpq-style URL, TLS as libpq's `sslmode` means it, and
//! the time bounds every connection carries.
//!
//! # TLS (`sslmode`, `sslrootcert`)
//!
//! | `sslmode`         | encrypted            | server certificate checked                 |
//! |-------------------|----------------------|--------------------------------------------|
//! | `disable`         | never                | –                                          |
//! | `allow`, `prefer` (default) | if the server offers it, else plain text | no              |
//! | `require`         | always               | no; with an explicit `sslrootcert`, as `verify-ca` (libpq does the same) |
//! | `verify-ca`       | always               | chain to `sslrootcert`                     |
//! | `verify-full`     | always               | chain to `sslrootcert` and the host name   |
//!
//! `sslrootcert` is a PEM file of trusted CA certificates; it defaults, as in libpq, to
//! `~/.postgresql/root.crt`. TLS is rustls with ring (no system OpenSSL needed for it); TLS 1.2
//! and 1.3. `allow` is taken as `prefer` (never less safe than asked). Client certificates
//! (`sslcert`, `sslkey`) are refused with a message rather than ignored.
//!
//! # Time bounds
//!
//! Every connection sets `statement_timeout` ([`STATEMENT_TIMEOUT`]), `lock_timeout`
//! ([`LOCK_TIMEOUT`]) and `idle_in_transaction_session_timeout`
//! ([`IDLE_IN_TRANSACTION_TIMEOUT`]) as start-up options, unless the URL's `options=` sets them
//! (`options=-c%20statement_timeout%3D10s`), plus TCP keepalives (idle 30 s, every 10 s, 3 probes),
//! `tcp_user_timeout` and `connect_timeout` ([`super::pg::CONNECT_TIMEOUT`]) unless the URL sets
//! them. A query cut by one of them is [`super::StoreError::Unavailable`]: the request answers
//! 503 within the bound instead of hanging.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use postgres::config::SslMode as WireSslMode;
use postgres::Config;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::pg::{redact, CONNECT_TIMEOUT};
use super::{Result, StoreError};

/// Longest a single statement may run (waiting for locks included) before PostgreSQL cancels it.
pub const STATEMENT_TIMEOUT: &str = "5s";
/// Longest a statement may wait for one lock (a row, a table, the writer's advisory lock).
pub const LOCK_TIMEOUT: &str = "5s";
/// A session left idle inside a transaction this long is ended by the server, releasing its locks.
pub const IDLE_IN_TRANSACTION_TIMEOUT: &str = "30s";

/// The server settings every connection gets unless the URL's `options=` names them.
const SESSION_DEFAULTS: [(&str, &str); 3] = [
    ("statement_timeout", STATEMENT_TIMEOUT),
    ("lock_timeout", LOCK_TIMEOUT),
    ("idle_in_transaction_session_timeout", IDLE_IN_TRANSACTION_TIMEOUT),
];

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(text: &str) -> Option<SslMode> {
        Some(match text {
            "disable" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }
}

/// Everything needed to open a connection: the client configuration and the TLS connector.
#[derive(Clone)]
pub struct Target {
    pub config: Config,
    pub sslmode: SslMode,
    tls: Option<MakeRustlsConnect>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target").field("config", &self.config).field("sslmode", &self.sslmode).finish()
    }
}

impl Target {
    /// Parses a libpq-style `postgres://` URL; a refusal names the setting and never shows a
    /// password.
    pub fn parse(url: &str) -> Result<Target> {
        let invalid =
            |why: String| StoreError::Unavailable(format!("the database URL {} is invalid: {why}", redact(url)));
        let (rest, tls) = split_tls(url).map_err(invalid)?;
        let mut config: Config = rest.parse().map_err(|e| invalid(format!("{e}")))?;
        let sslmode = tls.sslmode.unwrap_or(SslMode::Prefer);
        let verify = match (sslmode, &tls.rootcert) {
            (SslMode::Disable | SslMode::Prefer, _) | (SslMode::Require, None) => Verify::Nothing,
            (SslMode::Require | SslMode::VerifyCa, _) => Verify::Chain,
            (SslMode::VerifyFull, _) => Verify::ChainAndName,
        };
        let tls = match sslmode {
            SslMode::Disable => None,
            _ => Some(MakeRustlsConnect::new(client_config(verify, tls.rootcert).map_err(invalid)?)),
        };
        config.ssl_mode(match sslmode {
            SslMode::Disable => WireSslMode::Disable,
            SslMode::Prefer => WireSslMode::Prefer,
            _ => WireSslMode::Require,
        });
        bound(&mut config);
        if config.get_application_name().is_none() {
            config.application_name("jobtoken");
        }
        Ok(Target { config, sslmode, tls })
    }

    /// Opens one connection.
    pub fn connect(&self) -> std::result::Result<postgres::Client, postgres::Error> {
        match &self.tls {
            Some(tls) => self.config.connect(tls.clone()),
            None => self.config.connect(postgres::NoTls),
        }
    }
}

/// What the URL says about TLS, taken out of it (the client library knows neither `verify-*`
/// nor `sslrootcert`).
#[derive(Debug, Default, PartialEq, Eq)]
struct TlsSettings {
    sslmode: Option<SslMode>,
    /// `None`: not given; verification then reads libpq's default file.
    rootcert: Option<PathBuf>,
}

/// The URL without its TLS parameters, and those parameters.
fn split_tls(url: &str) -> std::result::Result<(String, TlsSettings), String> {
    let Some((base, query)) = url.split_once('?') else { return Ok((url.to_owned(), TlsSettings::default())) };
    let mut kept = Vec::new();
    let mut tls = TlsSettings::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value).ok_or_else(|| format!("{key} is not valid percent-encoded UTF-8"))?;
        match key {
            "sslmode" => {
                tls.sslmode = Some(SslMode::parse(&value).ok_or_else(|| {
                    format!("sslmode={value} is not one of disable, allow, prefer, require, verify-ca, verify-full")
                })?);
            }
            "sslrootcert" if value == "system" => {
                return Err("sslrootcert=system is not supported: name a PEM file of CA certificates".into())
            }
            "sslrootcert" => tls.rootcert = Some(PathBuf::from(value)),
            "sslcert" | "sslkey" | "sslpassword" | "sslcrl" | "sslcrldir" => {
                return Err(format!("{key} is not supported (client certificates and CRLs): remove it"))
            }
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
    Ok((rest, tls))
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Adds the time bounds the URL leaves unset (see the module documentation).
fn bound(config: &mut Config) {
    let options = config.get_options().unwrap_or_default().to_owned();
    let mut merged = options.clone();
    for (name, value) in SESSION_DEFAULTS {
        if !options.contains(name) {
            if !merged.is_empty() {
                merged.push(' ');
            }
            merged.push_str(&format!("-c {name}={value}"));
        }
    }
    config.options(&merged);
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_keepalives() {
        // The client library's default idle time is libpq's: two hours.
        if config.get_keepalives_idle() == Duration::from_secs(2 * 60 * 60) {
            config.keepalives_idle(Duration::from_secs(30));
        }
        if config.get_keepalives_interval().is_none() {
            config.keepalives_interval(Duration::from_secs(10));
        }
        if config.get_keepalives_retries().is_none() {
            config.keepalives_retries(3);
        }
    }
    if config.get_tcp_user_timeout().is_none() {
        // Unacknowledged data this long means the network or the server is gone.
        config.tcp_user_timeout(Duration::from_secs(30));
    }
}

/// How much of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verify {
    Nothing,
    Chain,
    ChainAndName,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(verify: Verify, rootcert: Option<PathBuf>) -> std::result::Result<ClientConfig, String> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let lenient = |chain| Arc::new(Lenient { chain, provider: provider.clone() });
    let config = match verify {
        Verify::Nothing => builder.dangerous().with_custom_certificate_verifier(lenient(None)).with_no_client_auth(),
        Verify::Chain | Verify::ChainAndName => {
            let roots = Arc::new(roots(rootcert)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| format!("sslrootcert: {e}"))?;
            match verify {
                Verify::ChainAndName => builder.with_webpki_verifier(webpki).with_no_client_auth(),
                _ => builder.dangerous().with_custom_certificate_verifier(lenient(Some(webpki))).with_no_client_auth(),
            }
        }
    };
    Ok(config)
}

/// The trusted CA certificates: `sslrootcert`, else libpq's `~/.postgresql/root.crt`.
fn roots(rootcert: Option<PathBuf>) -> std::result::Result<RootCertStore, String> {
    let path = match rootcert {
        Some(path) => path,
        None => std::env::var_os("HOME")
            .map(|home| PathBuf::from(home).join(".postgresql/root.crt"))
            .ok_or("certificate verification needs sslrootcert=FILE (a PEM file of CA certificates)")?,
    };
    let shown = path.display();
    let certs = CertificateDer::pem_file_iter(&path)
        .map_err(|e| format!("sslrootcert {shown} cannot be read: {e}"))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| format!("sslrootcert {shown} is not PEM: {e}"))?;
    let mut store = RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!("sslrootcert {shown} holds no usable CA certificate"));
    }
    Ok(store)
}

/// The certificate check of `sslmode=prefer`/`require` without a root certificate (`chain`
/// `None`: encrypted, the certificate not checked, as libpq does) and of `verify-ca` (the chain
/// must lead to a trusted root; the host name is not checked). The handshake's signatures are
/// always checked.
#[derive(Debug)]
struct Lenient {
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else { return Ok(ServerCertVerified::assertion()) };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            // The name is checked last: a name mismatch means the chain verified.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_connection_gets_the_time_bounds_the_url_does_not_set() {
        let target = Target::parse("postgres://u@h/db").unwrap();
        let options = target.config.get_options().unwrap();
        assert_eq!(options, "-c statement_timeout=5s -c lock_timeout=5s -c idle_in_transaction_session_timeout=30s");
        assert_eq!(target.config.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
        assert_eq!(target.config.get_keepalives_idle(), Duration::from_secs(30));
        assert_eq!(target.sslmode, SslMode::Prefer);

        let target = Target::parse("postgres://u@h/db?options=-c%20lock_timeout%3D1s&connect_timeout=9").unwrap();
        assert_eq!(
            target.config.get_options().unwrap(),
            "-c lock_timeout=1s -c statement_timeout=5s -c idle_in_transaction_session_timeout=30s"
        );
        assert_eq!(target.config.get_connect_timeout(), Some(&Duration::from_secs(9)));
    }

    #[test]
    fn sslmode_and_sslrootcert_are_taken_out_of_the_url_and_bad_ones_refused() {
        let (rest, tls) =
            split_tls("postgres://u@h/db?sslmode=verify-full&sslrootcert=%2Fca%20dir%2Fca.pem&x=1").unwrap();
        assert_eq!(rest, "postgres://u@h/db?x=1");
        assert_eq!(tls, TlsSettings { sslmode: Some(SslMode::VerifyFull), rootcert: Some("/ca dir/ca.pem".into()) });
        assert_eq!(Target::parse("postgres://u@h/db?sslmode=require").unwrap().sslmode, SslMode::Require);
        assert_eq!(Target::parse("postgres://u@h/db?sslmode=disable").unwrap().sslmode, SslMode::Disable);
        for (url, says) in [
            ("postgres://u:pw@h/db?sslmode=bogus", "sslmode=bogus is not one of"),
            (
                "postgres://u:pw@h/db?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem",
                "/nonexistent/ca.pem cannot be read",
            ),
            ("postgres://u:pw@h/db?sslcert=c.pem", "sslcert is not supported"),
        ] {
            let refused = Target::parse(url).unwrap_err().to_string();
            assert!(refused.contains(says), "{refused}");
            assert!(!refused.contains("pw"), "{refused}");
        }
    }
}
