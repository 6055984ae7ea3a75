//! What every HTTP backend (REST, S3, B2) takes from restic's global flags rather than from
//! `-o`: the user agent, the default stall timeout (`--stuck-request-timeout`), and TLS
//! (`--cacert`, `--tls-client-cert`, `--insecure-tls`).

use crate::OpenError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// HTTP settings shared by the HTTP backends.
#[derive(Clone, Default)]
pub struct Http {
    pub user_agent: Option<String>,
    /// The stall timeout where the backend's own `-o X.timeout` is not given.
    pub stuck_timeout: Option<Duration>,
    /// None: ureq's defaults (the Mozilla root certificates, full verification).
    pub tls: Option<Arc<ClientConfig>>,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("user_agent", &self.user_agent)
            .field("stuck_timeout", &self.stuck_timeout)
            .field("custom_tls", &self.tls.is_some())
            .finish()
    }
}

impl Http {
    /// An agent builder with these settings applied.
    pub(crate) fn agent_builder(&self) -> ureq::AgentBuilder {
        let mut b = ureq::AgentBuilder::new();
        if let Some(ua) = &self.user_agent {
            b = b.user_agent(ua);
        }
        if let Some(tls) = &self.tls {
            b = b.tls_config(tls.clone());
        }
        b
    }
}

/// What TLS should trust and present.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// PEM files of root certificates to trust instead of the built-in ones (`--cacert`).
    pub ca_certs: Vec<PathBuf>,
    /// A PEM file holding a client certificate and its private key (`--tls-client-cert`).
    pub client_cert: Option<PathBuf>,
    /// Accept any server certificate (`--insecure-tls`).
    pub insecure: bool,
}

impl TlsOptions {
    pub fn is_default(&self) -> bool {
        self.ca_certs.is_empty() && self.client_cert.is_none() && !self.insecure
    }
}

fn tls_err(what: &str, path: &Path, e: impl std::fmt::Display) -> OpenError {
    OpenError::bad_option(what, format!("{what} {}: {e}", path.display()))
}

/// A rustls client configuration for the options, or None when they are the defaults.
pub fn tls_config(o: &TlsOptions) -> Result<Option<Arc<ClientConfig>>, OpenError> {
    if o.is_default() {
        return Ok(None);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| OpenError::bad_option("tls", format!("TLS setup: {e}")))?;
    let builder = if o.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
    } else if o.ca_certs.is_empty() {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        builder.with_root_certificates(roots)
    } else {
        let mut roots = RootCertStore::empty();
        let mut pinned = Vec::new();
        for f in &o.ca_certs {
            let before = pinned.len();
            for cert in CertificateDer::pem_file_iter(f).map_err(|e| tls_err("--cacert", f, e))? {
                let cert = cert.map_err(|e| tls_err("--cacert", f, e))?;
                roots
                    .add(cert.clone())
                    .map_err(|e| tls_err("--cacert", f, e))?;
                pinned.push(cert);
            }
            if pinned.len() == before {
                return Err(tls_err("--cacert", f, "no certificate in the file"));
            }
        }
        let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .map_err(|e| OpenError::bad_option("--cacert", format!("--cacert: {e}")))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(RootsOrPinned { webpki, pinned }))
    };
    let config = match &o.client_cert {
        None => builder.with_no_client_auth(),
        Some(f) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(f)
                .map_err(|e| tls_err("--tls-client-cert", f, e))?
                .collect::<Result<_, _>>()
                .map_err(|e| tls_err("--tls-client-cert", f, e))?;
            if certs.is_empty() {
                return Err(tls_err(
                    "--tls-client-cert",
                    f,
                    "no certificate in the file",
                ));
            }
            let key = PrivateKeyDer::from_pem_file(f)
                .map_err(|e| tls_err("--tls-client-cert", f, format!("no private key: {e}")))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| tls_err("--tls-client-cert", f, e))?
        }
    };
    Ok(Some(Arc::new(config)))
}

/// `--cacert`: chains to the given roots are verified as usual; a server certificate that
/// *is* one of the given certificates is trusted as well. That is how Go (and so restic)
/// treats the self-signed certificates rest-server's documentation shows how to make, which
/// carry `CA:TRUE` and which webpki alone refuses as a server's own certificate.
#[derive(Debug)]
struct RootsOrPinned {
    webpki: Arc<rustls::client::WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for RootsOrPinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Ok(v) => Ok(v),
            Err(_)
                if self
                    .pinned
                    .iter()
                    .any(|c| c.as_ref() == end_entity.as_ref()) =>
            {
                Ok(ServerCertVerified::assertion())
            }
            Err(e) => Err(e),
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// `--insecure-tls`: any certificate is accepted, signatures are still checked (so the
/// connection is encrypted, but to whoever answers).
#[derive(Debug)]
struct AcceptAnyCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_leave_ureq_alone_and_bad_files_are_named() {
        assert!(tls_config(&TlsOptions::default()).unwrap().is_none());
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let e = tls_config(&TlsOptions {
            ca_certs: vec![empty.clone()],
            ..Default::default()
        })
        .expect_err("an empty --cacert is refused");
        assert!(e.to_string().contains("empty.pem"), "{e}");
        let insecure = tls_config(&TlsOptions {
            insecure: true,
            ..Default::default()
        })
        .unwrap();
        assert!(insecure.is_some());
    }
}
