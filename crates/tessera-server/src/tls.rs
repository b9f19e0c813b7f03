//! HTTPS: the rustls server configuration built from the `tls_cert` and `tls_key` files.
//!
//! The ring provider is named explicitly rather than taken from the process default, so the
//! choice does not depend on which rustls features other crates happen to enable.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why the certificate or key cannot be used, naming the setting at fault.
#[derive(Debug)]
pub(crate) struct TlsError {
    /// `tls_cert` or `tls_key`.
    pub(crate) setting: &'static str,
    /// What is wrong (never the key's bytes).
    pub(crate) reason: String,
}

/// Loads the PEM certificate chain at `cert` and the PEM private key at `key` (PKCS#8,
/// PKCS#1 or SEC1) and checks that they belong together.
pub(crate) fn server_config(
    cert: &Path,
    key: &Path,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let cert_error = |reason: String| TlsError {
        setting: "tls_cert",
        reason,
    };
    let key_error = |reason: String| TlsError {
        setting: "tls_key",
        reason,
    };
    readable(cert).map_err(cert_error)?;
    readable(key).map_err(key_error)?;
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            cert_error(format!(
                "{} is not a PEM certificate chain: {e}",
                cert.display()
            ))
        })?;
    if chain.is_empty() {
        return Err(cert_error(format!(
            "{} holds no PEM certificate",
            cert.display()
        )));
    }
    // The key's parse error is not quoted: it could echo part of the file.
    let private = PrivateKeyDer::from_pem_file(key).map_err(|_| {
        key_error(format!(
            "{} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
            key.display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| cert_error(format!("cannot configure TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| {
            key_error(format!(
                "cannot be used with the certificate {}: {e}",
                cert.display()
            ))
        })?;
    Ok(Arc::new(config))
}

fn readable(path: &Path) -> Result<(), String> {
    std::fs::File::open(path)
        .map(drop)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}
