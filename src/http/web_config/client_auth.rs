//! `client_auth_type`, `client_ca_file` / `client_ca` and
//! `client_allowed_sans`: the client certificate verifier the toolkit's
//! settings ask for.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, UnixTime};

/// What the toolkit's web config says about client certificates.
pub(super) struct ClientAuth {
    pub auth_type: Option<String>,
    /// Resolved against the config file's directory.
    pub ca_file: Option<PathBuf>,
    pub ca_inline: Option<String>,
    pub allowed_sans: Option<Vec<String>>,
}

/// The verifier for `auth`, or `None` for `NoClientCert`; the CA file read
/// is added to `files`, to be watched.
pub(super) fn verifier(
    auth: ClientAuth,
    provider: &Arc<CryptoProvider>,
    files: &mut Vec<PathBuf>,
) -> Result<Option<Arc<dyn ClientCertVerifier>>, String> {
    let auth_type = auth.auth_type.filter(|a| !a.is_empty());
    let auth_type = auth_type.as_deref().unwrap_or("NoClientCert");
    let ca_key = if auth.ca_file.is_some() {
        "client_ca_file"
    } else {
        "client_ca"
    };
    let ca_given = auth.ca_file.is_some() || auth.ca_inline.is_some();
    let inner: Arc<dyn ClientCertVerifier> = match auth_type {
        "NoClientCert" if ca_given => {
            return Err(format!(
                "tls_server_config.{ca_key}: given without a client_auth_type that uses it (VerifyClientCertIfGiven or RequireAndVerifyClientCert; RequestClientCert and RequireAnyClientCert read it but do not verify with it)"
            ))
        }
        "NoClientCert" if auth.allowed_sans.is_some() => {
            return Err("tls_server_config.client_allowed_sans: given with client_auth_type NoClientCert, which asks for no certificate to match them against".into())
        }
        "NoClientCert" => return Ok(None),
        // "RequireClientCert" is the toolkit's old name of RequireAnyClientCert.
        "RequestClientCert" | "RequireAnyClientCert" | "RequireClientCert" => {
            // As the toolkit, the CA is read (a missing file is an error)
            // but not used: these types do not verify the certificate.
            roots(auth.ca_file, auth.ca_inline, files)?;
            Arc::new(AnyClientCert {
                mandatory: auth_type != "RequestClientCert",
                algorithms: provider.signature_verification_algorithms,
            })
        }
        "VerifyClientCertIfGiven" | "RequireAndVerifyClientCert" => {
            let roots = match roots(auth.ca_file, auth.ca_inline, files)? {
                Some(roots) => roots,
                None => super::crypto::system_roots()?,
            };
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let verifier = if auth_type == "VerifyClientCertIfGiven" {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            verifier.build().map_err(|e| format!("tls_server_config: {e}"))?
        }
        other => {
            return Err(format!(
                "tls_server_config.client_auth_type: {other:?} is not one of NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert"
            ))
        }
    };
    Ok(Some(match auth.allowed_sans {
        None => inner,
        Some(allowed) => Arc::new(AllowedSans { inner, allowed }),
    }))
}

/// The client CAs of `client_ca_file` (or inline `client_ca`); `None` when
/// neither is given.
fn roots(
    ca_file: Option<PathBuf>,
    ca_inline: Option<String>,
    files: &mut Vec<PathBuf>,
) -> Result<Option<rustls::RootCertStore>, String> {
    let key = match &ca_file {
        Some(path) => format!("client_ca_file: {}", path.display()),
        None => "client_ca".to_string(),
    };
    let Some(certs) = super::crypto::pem_certificates(("client_ca_file", ca_file), ("client_ca", ca_inline), files)?
    else {
        return Ok(None);
    };
    let mut roots = rustls::RootCertStore::empty();
    for ca in certs {
        roots.add(ca).map_err(|e| format!("tls_server_config.{key}: {e}"))?;
    }
    Ok(Some(roots))
}

/// `RequestClientCert` (not mandatory) and `RequireAnyClientCert`
/// (mandatory), as in Go: any certificate chain is taken without checking
/// who issued it, but the client must still prove, by its handshake
/// signature, that it holds the certificate's key. No CA names are sent.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `client_allowed_sans`: after `inner` has taken the certificate, its leaf
/// must name one of `allowed` among its DNS names, email addresses, IP
/// addresses or URIs, compared as exact strings, as the toolkit does. A
/// client without a certificate has nothing to match and is refused,
/// whatever `client_auth_type` says.
#[derive(Debug)]
struct AllowedSans {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<String>,
}

impl ClientCertVerifier for AllowedSans {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self.inner.verify_client_cert(end_entity, intermediates, now)?;
        let refuse = |why: String| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(Arc::new(
                std::io::Error::other(why),
            ))))
        };
        let names = super::san::subject_alt_names(end_entity)
            .ok_or_else(|| refuse("client certificate: its subjectAltName cannot be read".into()))?;
        if names.iter().any(|name| self.allowed.contains(name)) {
            Ok(verified)
        } else {
            Err(refuse(format!(
                "client certificate names none of client_allowed_sans; it names {names:?}"
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A path of the config, relative to its directory.
pub(super) fn resolve(base: &Path, path: PathBuf) -> PathBuf {
    if path.is_absolute() {
        path
    } else {
        base.join(path)
    }
}
