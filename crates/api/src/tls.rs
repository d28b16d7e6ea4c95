//! TLS for the optional HTTPS listener: loading the certificate into a rustls (aws-lc-rs provider)
//! server config, and naming a connection's TLS facts ([`TlsInfo`]) as CloudTrail's `tlsDetails` does.
//! The accept loop itself is `listener.rs`, shared with plain HTTP.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::{self, CipherSuite, ProtocolVersion, ServerConfig};

use crate::TlsInfo;

/// Why the certificate or key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}: {source}")]
    Read { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    NoKey { path: PathBuf },
    #[error("certificate {cert} and key {key} cannot be used: {source}")]
    Rejected { cert: PathBuf, key: PathBuf, source: rustls::Error },
}

/// Reads a PEM certificate chain and private key into a rustls server config (TLS 1.2 and 1.3,
/// ALPN h2 and http/1.1).
pub fn load_server_config(cert_file: &Path, key_file: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let read = |what: &'static str, path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read { what, path: path.to_path_buf(), source })
    };
    let cert_pem = read("certificate file", cert_file)?;
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|source| TlsError::Read { what: "certificate file", path: cert_file.to_path_buf(), source })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { path: cert_file.to_path_buf() });
    }
    let key_pem = read("key file", key_file)?;
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|source| TlsError::Read { what: "key file", path: key_file.to_path_buf(), source })?
        .ok_or_else(|| TlsError::NoKey { path: key_file.to_path_buf() })?;
    let rejected = |source| TlsError::Rejected { cert: cert_file.to_path_buf(), key: key_file.to_path_buf(), source };
    // The provider is named rather than taken from the process default, so a second provider pulled
    // in by some dependency can never make the builder panic.
    let mut cfg = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(rejected)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(rejected)?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The negotiated version and suite, named as CloudTrail's `tlsDetails` names them.
pub(crate) fn tls_info(conn: &rustls::ServerConnection) -> TlsInfo {
    let version = match conn.protocol_version() {
        Some(ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
        Some(ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    };
    let cipher_suite = conn.negotiated_cipher_suite().map(|s| cipher_suite_name(s.suite())).unwrap_or_default();
    TlsInfo { version, cipher_suite, sni: conn.server_name().map(str::to_string) }
}

/// TLS 1.3 suites by their IANA names (`TLS_AES_128_GCM_SHA256`), TLS 1.2 suites by their OpenSSL names
/// (`ECDHE-RSA-AES128-GCM-SHA256`), as AWS records them.
fn cipher_suite_name(suite: CipherSuite) -> String {
    let openssl = match suite {
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => "ECDHE-ECDSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => "ECDHE-ECDSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-ECDSA-CHACHA20-POLY1305",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => "ECDHE-RSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => "ECDHE-RSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-RSA-CHACHA20-POLY1305",
        other => {
            return match other.as_str() {
                Some(name) => {
                    name.strip_prefix("TLS13_").map_or_else(|| name.to_string(), |rest| format!("TLS_{rest}"))
                }
                None => format!("{other:?}"),
            };
        }
    };
    openssl.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suites_are_named_as_cloudtrail_names_them() {
        assert_eq!(cipher_suite_name(CipherSuite::TLS13_AES_128_GCM_SHA256), "TLS_AES_128_GCM_SHA256");
        assert_eq!(cipher_suite_name(CipherSuite::TLS13_CHACHA20_POLY1305_SHA256), "TLS_CHACHA20_POLY1305_SHA256");
        assert_eq!(
            cipher_suite_name(CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
            "ECDHE-RSA-AES128-GCM-SHA256"
        );
    }

    #[test]
    fn missing_or_empty_pem_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let missing = dir.path().join("missing.pem");
        assert!(matches!(load_server_config(&missing, &empty), Err(TlsError::Read { .. })));
        assert!(matches!(load_server_config(&empty, &empty), Err(TlsError::NoCertificate { .. })));
    }
}
