//! Optional TLS (rustls, ring provider): a PEM certificate chain and a PEM
//! private key from `security.tls_cert` / `security.tls_key`. Errors name
//! the file and what was wrong with it.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why the certificate or key cannot be used: the file and what was wrong.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(String);

/// A rustls server configuration from PEM files.
pub fn server_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig, TlsError> {
    let tls = |what: &str, path: &Path, e: &dyn std::fmt::Display| {
        TlsError(format!("{what} {}: {e}", path.display()))
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| tls("cannot read certificate", cert, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls("bad certificate PEM in", cert, &e))?;
    if chain.is_empty() {
        return Err(tls(
            "no certificate in",
            cert,
            &"expected -----BEGIN CERTIFICATE-----",
        ));
    }
    let key_der =
        PrivateKeyDer::from_pem_file(key).map_err(|e| tls("cannot read private key", key, &e))?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| tls("certificate and key do not fit", key, &e))
}
