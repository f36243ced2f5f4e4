//! A throwaway PostgreSQL cluster that demands TLS (`ssl = on`, `hostssl` for every test
//! database; only the harness's own `postgres` database takes plain connections), with a CA and
//! a server certificate for `localhost` generated here, and a second CA that signed nothing.

use std::path::PathBuf;
use std::sync::OnceLock;

use super::pg::{Cluster, Setup};

pub struct TlsCluster {
    pub cluster: Cluster,
    /// The CA that signed the server's certificate (PEM file).
    pub ca: PathBuf,
    /// A CA that did not (PEM file).
    pub other_ca: PathBuf,
}

static TLS: OnceLock<TlsCluster> = OnceLock::new();

/// This binary's TLS cluster, started by the first caller.
pub fn cluster() -> &'static TlsCluster {
    TLS.get_or_init(start)
}

/// A fresh database on the TLS cluster: its URL with host 127.0.0.1 and no TLS parameters.
pub fn database() -> String {
    cluster().cluster.new_database("")
}

/// A CA certificate (PEM) and its issuer.
fn ca(name: &str) -> (String, rcgen::Issuer<'static, rcgen::KeyPair>) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), rcgen::Issuer::new(params, key))
}

fn start() -> TlsCluster {
    let (ca_pem, issuer) = ca("jobtoken test CA");
    let (other_pem, _) = ca("some other CA");
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, "localhost");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let setup = Setup {
        hba: Some(
            "local all all trust\nhost postgres all 127.0.0.1/32 trust\nhostssl all all 127.0.0.1/32 trust\n".into(),
        ),
        conf: "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n".into(),
        files: vec![
            ("server.crt".into(), cert.pem().into_bytes()),
            ("server.key".into(), key.serialize_pem().into_bytes()),
        ],
    };
    let cluster = Cluster::start_with(&setup);
    let (ca, other_ca) = (cluster.dir.join("ca.pem"), cluster.dir.join("other-ca.pem"));
    std::fs::write(&ca, ca_pem).unwrap();
    std::fs::write(&other_ca, other_pem).unwrap();
    TlsCluster { cluster, ca, other_ca }
}
