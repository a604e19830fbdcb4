//! The `tls:` block every network client and server takes, built into a rustls config once.
//!
//! ```yaml
//! tls:
//!   ca_file: /etc/weir/ca.pem     # roots to trust (default: the system's CA certificates)
//!   crt_file: /etc/weir/tls.crt   # our certificate chain: a client's for mutual TLS, a server's
//!   key_file: /etc/weir/tls.key   # its private key (PKCS#8, PKCS#1 or SEC1 PEM)
//!   verify_certificate: true      # false accepts any certificate: testing only
//!   verify_hostname: true         # false accepts a trusted certificate for another name
//!   server_name: es.internal      # the name to ask for and verify (default: the URI's host)
//!   min_version: "1.2"            # "1.2" (default) or "1.3"
//! ```
//!
//! Files are read when the config is checked, so `weir check` names a missing or malformed
//! file; a failed handshake is described by [`describe`] (unknown CA, expired, wrong
//! host, client certificate refused) instead of rustls' enum names.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::config::error::Pos;

/// The lowest TLS version accepted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3 (the default).
    #[default]
    #[serde(rename = "1.2")]
    V1_2,
    /// TLS 1.3 only.
    #[serde(rename = "1.3")]
    V1_3,
}

/// `tls:` of a client or a server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// CA certificates (PEM) to verify the peer with; a client defaults to the system's, a
    /// server with `ca_file` requires client certificates signed by it (mutual TLS).
    #[serde(default)]
    pub ca_file: Option<Spanned<PathBuf>>,
    /// Our certificate chain (PEM): a server's, or a client's for mutual TLS.
    #[serde(default)]
    pub crt_file: Option<Spanned<PathBuf>>,
    /// The private key of `crt_file` (PEM).
    #[serde(default)]
    pub key_file: Option<Spanned<PathBuf>>,
    /// Verify the peer's certificate (default true). Off, any certificate is accepted.
    #[serde(default = "yes")]
    pub verify_certificate: bool,
    /// Verify that the server's certificate is for the host asked for (default true).
    #[serde(default = "yes")]
    pub verify_hostname: bool,
    /// The host name to send (SNI) and verify, instead of the address's host.
    #[serde(default)]
    pub server_name: Option<Spanned<String>>,
    /// `"1.2"` (default) or `"1.3"`.
    #[serde(default)]
    pub min_version: Option<Spanned<TlsVersion>>,
}

impl Default for TlsConfig {
    /// No files: the system's CAs, everything verified, TLS 1.2 or newer.
    fn default() -> TlsConfig {
        TlsConfig {
            ca_file: None,
            crt_file: None,
            key_file: None,
            verify_certificate: true,
            verify_hostname: true,
            server_name: None,
            min_version: None,
        }
    }
}

const TLS13_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

fn yes() -> bool {
    true
}

/// A built client side: the rustls config and the name to verify.
#[derive(Debug, Clone)]
pub struct TlsClient {
    /// Shared by every connection of the component.
    pub config: Arc<ClientConfig>,
    /// `server_name`, when set.
    pub server_name: Option<ServerName<'static>>,
    /// Where the trusted roots came from, for error messages.
    pub roots: String,
}

/// A failure to build a TLS config: the key it is about, and why.
pub type TlsError = (Pos, String);

/// ring: it builds with a C compiler alone (aws-lc-rs wants more). rustls 0.23.48 marks it
/// deprecated only because ring offers no post-quantum key exchange.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsConfig {
    fn versions(&self) -> &'static [&'static rustls::SupportedProtocolVersion] {
        match self.min_version.as_ref().map_or(TlsVersion::V1_2, |v| v.value) {
            TlsVersion::V1_2 => rustls::ALL_VERSIONS,
            TlsVersion::V1_3 => TLS13_ONLY,
        }
    }

    fn pos(&self) -> Pos {
        [&self.ca_file, &self.crt_file, &self.key_file]
            .into_iter()
            .flatten()
            .map(Pos::of)
            .next()
            .unwrap_or_default()
    }

    /// The certificate chain and key, when both are given (one without the other is an
    /// error).
    fn identity(&self) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, TlsError> {
        match (&self.crt_file, &self.key_file) {
            (None, None) => Ok(None),
            (Some(crt), Some(key)) => {
                let chain = read_certs(&crt.value).map_err(|m| (Pos::of(crt), format!("tls.crt_file {m}")))?;
                let private = PrivateKeyDer::from_pem_file(&key.value).map_err(|e| {
                    (
                        Pos::of(key),
                        format!("tls.key_file {}: {}", key.value.display(), pem_error(e, "PRIVATE KEY")),
                    )
                })?;
                Ok(Some((chain, private)))
            }
            (Some(crt), None) => Err((Pos::of(crt), "tls.crt_file needs tls.key_file".into())),
            (None, Some(key)) => Err((Pos::of(key), "tls.key_file needs tls.crt_file".into())),
        }
    }

    /// The roots to trust: `ca_file`, or the system's CA certificates.
    fn roots(&self) -> Result<(RootCertStore, String), TlsError> {
        let mut store = RootCertStore::empty();
        if let Some(ca) = &self.ca_file {
            let certs = read_certs(&ca.value).map_err(|m| (Pos::of(ca), format!("tls.ca_file {m}")))?;
            for cert in certs {
                store.add(cert).map_err(|e| {
                    (
                        Pos::of(ca),
                        format!("tls.ca_file {}: not a usable CA certificate: {e}", ca.value.display()),
                    )
                })?;
            }
            return Ok((store, format!("tls.ca_file {}", ca.value.display())));
        }
        let found = rustls_native_certs::load_native_certs();
        let (added, _) = store.add_parsable_certificates(found.certs);
        if added == 0 {
            return Err((
                self.pos(),
                "the system has no CA certificates to verify servers with (install the \
                 ca-certificates package, or set tls.ca_file)"
                    .into(),
            ));
        }
        Ok((store, "the system's CA certificates".into()))
    }

    /// Builds the client side. Errors name the key and file; the caller adds its own name.
    pub fn client(&self) -> Result<TlsClient, TlsError> {
        let (roots, roots_from) = self.roots()?;
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| (self.pos(), format!("tls: {e}")))?;
        let verifier = Arc::new(Verifier {
            inner: webpki,
            verify_certificate: self.verify_certificate,
            verify_hostname: self.verify_hostname,
        });
        let builder = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(self.versions())
            .map_err(|e| (self.pos(), format!("tls: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match self.identity()? {
            Some((chain, key)) => builder.with_client_auth_cert(chain, key).map_err(|e| {
                (
                    pos_of(&self.key_file),
                    format!("tls.key_file does not go with tls.crt_file: {e}"),
                )
            })?,
            None => builder.with_no_client_auth(),
        };
        let server_name = match &self.server_name {
            Some(name) => Some(ServerName::try_from(name.value.clone()).map_err(|_| {
                (
                    Pos::of(name),
                    format!("tls.server_name {:?} is not a host name", name.value),
                )
            })?),
            None => None,
        };
        Ok(TlsClient {
            config: Arc::new(config),
            server_name,
            roots: roots_from,
        })
    }

    /// Builds the server side: `crt_file` and `key_file` are required; with `ca_file`,
    /// clients must present a certificate signed by it.
    pub fn server(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let Some((chain, key)) = self.identity()? else {
            return Err((self.pos(), "a TLS listener needs tls.crt_file and tls.key_file".into()));
        };
        let builder = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(self.versions())
            .map_err(|e| (self.pos(), format!("tls: {e}")))?;
        let builder = match &self.ca_file {
            Some(_) => {
                let (roots, _) = self.roots()?;
                let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                    .build()
                    .map_err(|e| (self.pos(), format!("tls.ca_file: {e}")))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let config = builder.with_single_cert(chain, key).map_err(|e| {
            (
                pos_of(&self.key_file),
                format!("tls.key_file does not go with tls.crt_file: {e}"),
            )
        })?;
        Ok(Arc::new(config))
    }
}

fn pos_of<T>(s: &Option<Spanned<T>>) -> Pos {
    s.as_ref().map(Pos::of).unwrap_or_default()
}

/// Every certificate of a PEM file; an error says what is wrong with the file.
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {}", path.display(), pem_error(e, "CERTIFICATE")))?
        .collect();
    let certs = certs.map_err(|e| format!("{}: {}", path.display(), pem_error(e, "CERTIFICATE")))?;
    if certs.is_empty() {
        return Err(format!(
            "{}: no certificate in it (expected PEM blocks `-----BEGIN CERTIFICATE-----`)",
            path.display()
        ));
    }
    Ok(certs)
}

fn pem_error(e: rustls_pki_types::pem::Error, expected: &str) -> String {
    use rustls_pki_types::pem::Error as E;
    match e {
        E::Io(e) => format!("cannot read it: {e}"),
        E::NoItemsFound => format!("no {expected} in it (expected a PEM block `-----BEGIN {expected}-----`)"),
        other => format!("not valid PEM: {other}"),
    }
}

/// webpki's verification, with host names or all checks optionally off.
#[derive(Debug)]
struct Verifier {
    inner: Arc<WebPkiServerVerifier>,
    verify_certificate: bool,
    verify_hostname: bool,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if !self.verify_certificate {
            return Ok(ServerCertVerified::assertion());
        }
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            // webpki checks the name last, so the chain was trusted.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.verify_hostname => Ok(ServerCertVerified::assertion()),
            other => other,
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

/// A failed handshake in words a user can act on; `roots` says where trusted CAs came from.
pub fn describe(e: &rustls::Error, roots: &str) -> String {
    use rustls::AlertDescription as A;
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => {
                format!("the server's certificate is signed by an unknown CA (not one of {roots})")
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the server's certificate has expired".into()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "the server's certificate is not valid yet (check this machine's clock)".into()
            }
            CertificateError::NotValidForName => "the server's certificate is not for this host name".into(),
            CertificateError::NotValidForNameContext { expected, presented } => format!(
                "wrong host: the server's certificate is not for {} (it names {}); set tls.server_name \
                 to one of those names, or fix the address",
                name(expected),
                presented
                    .iter()
                    .map(|p| presented_name(p))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            other => format!("the server's certificate was refused: {other:?}"),
        },
        E::AlertReceived(A::CertificateRequired) => {
            "the server requires a client certificate (set tls.crt_file and tls.key_file)".into()
        }
        E::AlertReceived(alert @ (A::UnknownCA | A::BadCertificate | A::CertificateUnknown | A::AccessDenied)) => {
            format!("the server refused our client certificate ({alert:?})")
        }
        E::AlertReceived(A::ProtocolVersion) => {
            "the server does not speak a TLS version we accept (tls.min_version)".into()
        }
        other => other.to_string(),
    }
}

/// rustls lists a certificate's names as `DnsName("a.example")` / `IpAddress(1.2.3.4)`.
fn presented_name(p: &str) -> &str {
    match p.split_once('(') {
        Some((_, inner)) => inner.trim_end_matches(')').trim_matches('"'),
        None => p,
    }
}

fn name(n: &ServerName<'_>) -> String {
    match n {
        ServerName::DnsName(d) => d.as_ref().to_string(),
        ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use rustls::{ClientConnection, ServerConnection};

    /// Writes a CA, a server certificate for `localhost` and a client certificate into `dir`.
    fn pki(dir: &Path) -> [PathBuf; 5] {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
        let issuer = Issuer::new(ca, ca_key);
        let mut out = vec![dir.join("ca.pem")];
        std::fs::write(&out[0], ca_pem).unwrap();
        for name in ["localhost", "client"] {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(vec![name.to_string()])
                .unwrap()
                .signed_by(&key, &issuer)
                .unwrap();
            let (crt, key_path) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
            std::fs::write(&crt, cert.pem()).unwrap();
            std::fs::write(&key_path, key.serialize_pem()).unwrap();
            out.extend([crt, key_path]);
        }
        out.try_into().unwrap()
    }

    fn config(yaml: &str) -> TlsConfig {
        serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"))
    }

    /// Runs a handshake in memory; the first error of either side.
    fn handshake(client: &TlsClient, server: Arc<ServerConfig>) -> Result<(), rustls::Error> {
        let name = ServerName::try_from("localhost").unwrap();
        let mut c = ClientConnection::new(client.config.clone(), name)?;
        let mut s = ServerConnection::new(server)?;
        for _ in 0..10 {
            let mut buf = Vec::new();
            c.write_tls(&mut buf).unwrap();
            s.read_tls(&mut buf.as_slice()).unwrap();
            s.process_new_packets()?;
            let mut buf = Vec::new();
            s.write_tls(&mut buf).unwrap();
            c.read_tls(&mut buf.as_slice()).unwrap();
            c.process_new_packets()?;
            if !c.is_handshaking() && !s.is_handshaking() {
                return Ok(());
            }
        }
        panic!("the handshake did not end");
    }

    #[test]
    fn a_server_with_ca_file_requires_client_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let [ca, server_crt, server_key, client_crt, client_key] = pki(dir.path());
        let d = |p: &PathBuf| p.display().to_string();
        let server = config(&format!(
            "{{ ca_file: \"{}\", crt_file: \"{}\", key_file: \"{}\" }}",
            d(&ca),
            d(&server_crt),
            d(&server_key)
        ))
        .server()
        .unwrap();
        let anonymous = config(&format!("{{ ca_file: \"{}\" }}", d(&ca))).client().unwrap();
        let err = handshake(&anonymous, server.clone()).unwrap_err();
        assert!(matches!(err, rustls::Error::NoCertificatesPresented), "{err:?}");
        let with_cert = config(&format!(
            "{{ ca_file: \"{}\", crt_file: \"{}\", key_file: \"{}\", min_version: \"1.3\" }}",
            d(&ca),
            d(&client_crt),
            d(&client_key)
        ))
        .client()
        .unwrap();
        handshake(&with_cert, server).unwrap();
    }

    #[test]
    fn a_server_needs_its_certificate_and_key() {
        let err = config("{ min_version: \"1.3\" }").server().unwrap_err();
        assert!(err.1.contains("needs tls.crt_file and tls.key_file"), "{}", err.1);
    }

    #[test]
    fn failures_are_described_in_words() {
        let unknown = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        assert_eq!(
            describe(&unknown, "tls.ca_file /etc/ca.pem"),
            "the server's certificate is signed by an unknown CA (not one of tls.ca_file /etc/ca.pem)"
        );
        assert_eq!(presented_name("DnsName(\"a.example\")"), "a.example");
        assert_eq!(presented_name("IpAddress(10.0.0.1)"), "10.0.0.1");
    }
}
