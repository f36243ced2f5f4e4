//! HTTPS with rustls (ring provider, the one already used for PostgreSQL): the server
//! configuration from `JOBTOKEN_TLS_CERT` / `JOBTOKEN_TLS_KEY`, checked at start-up.

use std::sync::Arc;

use rustls::crypto::ring::default_provider;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsFiles;

/// Reads the certificate chain and its key and builds the server configuration. A missing or
/// unreadable file, a file without the expected PEM block, or a key that does not belong to the
/// first certificate is an error naming the file (never the key's contents).
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, String> {
    let cert_shown = files.cert.display();
    let key_shown = files.key.display();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| format!("JOBTOKEN_TLS_CERT {cert_shown}: {}", pem_error(&e)))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("JOBTOKEN_TLS_CERT {cert_shown}: {}", pem_error(&e)))?;
    if certs.is_empty() {
        return Err(format!("JOBTOKEN_TLS_CERT {cert_shown}: no CERTIFICATE block in the file"));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| format!("JOBTOKEN_TLS_KEY {key_shown}: {}", pem_error(&e)))?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_no_client_auth()
        // Checks that the key belongs to the first certificate.
        .with_single_cert(certs, key)
        .map_err(|e| {
            format!("JOBTOKEN_TLS_CERT {cert_shown} and JOBTOKEN_TLS_KEY {key_shown} do not make a usable pair: {e}")
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn pem_error(e: &rustls_pki_types::pem::Error) -> String {
    match e {
        rustls_pki_types::pem::Error::Io(io) => io.to_string(),
        rustls_pki_types::pem::Error::NoItemsFound => "no PEM block of the expected kind in the file".into(),
        other => format!("not a valid PEM file ({other:?})"),
    }
}
