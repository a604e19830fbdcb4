//! Certificates the TLS tests generate (rcgen): a CA, a second CA nobody trusts, and
//! server and client certificates signed by the first, valid, expired or for another host.
#![allow(dead_code)] // each user takes what it needs

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, date_time_ymd};

/// The PEM files, in one directory.
#[derive(Debug)]
pub struct Pki {
    /// The CA that signed every certificate below.
    pub ca: PathBuf,
    /// A CA that signed nothing here.
    pub other_ca: PathBuf,
    /// (certificate, key) for 127.0.0.1 and localhost.
    pub server: (PathBuf, PathBuf),
    /// (certificate, key) for 127.0.0.1, expired in 2020.
    pub expired: (PathBuf, PathBuf),
    /// (certificate, key) for `other.example` only.
    pub other_host: (PathBuf, PathBuf),
    /// (certificate, key) of a client.
    pub client: (PathBuf, PathBuf),
}

fn ca(name: &str) -> (CertificateParams, KeyPair) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    (params, KeyPair::generate().unwrap())
}

fn write(dir: &Path, name: &str, pem: String) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, pem).unwrap();
    path
}

/// Generates every file into `dir`.
pub fn generate(dir: &Path) -> Pki {
    let (ca_params, ca_key) = ca("Weir test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let (other_params, other_key) = ca("Some other CA");
    let other_cert = other_params.self_signed(&other_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = |name: &str, sans: &[&str], expired: bool| {
        let mut params = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        if expired {
            params.not_before = date_time_ymd(2019, 1, 1);
            params.not_after = date_time_ymd(2020, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        (
            write(dir, &format!("{name}.crt"), cert.pem()),
            write(dir, &format!("{name}.key"), key.serialize_pem()),
        )
    };
    Pki {
        ca: write(dir, "ca.pem", ca_cert.pem()),
        other_ca: write(dir, "other-ca.pem", other_cert.pem()),
        server: leaf("server", &["127.0.0.1", "localhost"], false),
        expired: leaf("expired", &["127.0.0.1", "localhost"], true),
        other_host: leaf("other-host", &["other.example"], false),
        client: leaf("client", &["weir-client"], false),
    }
}
