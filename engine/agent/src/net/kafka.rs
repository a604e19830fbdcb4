//! Kafka client settings shared by the `kafka` input and output: brokers, SASL, TLS and
//! librdkafka options passed through.

use std::collections::BTreeMap;

use rdkafka::config::ClientConfig;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::tls::{TlsConfig, TlsVersion};
use crate::config::error::Pos;

/// `sasl:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSaslConfig {
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: Spanned<String>,
    /// The user.
    pub username: String,
    /// The password.
    pub password: String,
}

/// The settings every Kafka client of a pipeline has, borrowed from its config.
#[derive(Debug, Clone, Copy)]
pub struct Client<'a> {
    /// `bootstrap_servers`.
    pub bootstrap_servers: &'a Spanned<String>,
    /// `sasl`.
    pub sasl: &'a Option<KafkaSaslConfig>,
    /// `tls`.
    pub tls: &'a Option<TlsConfig>,
    /// `librdkafka_options`.
    pub options: &'a Option<Spanned<BTreeMap<String, String>>>,
}

impl Client<'_> {
    /// The librdkafka settings: brokers and security; `more` adds the component's own,
    /// then `librdkafka_options` win over everything.
    pub fn config(&self, more: impl FnOnce(&mut ClientConfig)) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_servers.value);
        let protocol = match (self.sasl, self.tls) {
            (None, None) => "plaintext",
            (None, Some(_)) => "ssl",
            (Some(_), None) => "sasl_plaintext",
            (Some(_), Some(_)) => "sasl_ssl",
        };
        c.set("security.protocol", protocol);
        if let Some(s) = self.sasl {
            c.set("sasl.mechanism", &s.mechanism.value)
                .set("sasl.username", &s.username)
                .set("sasl.password", &s.password);
        }
        if let Some(t) = self.tls {
            for (key, value) in [
                ("ssl.ca.location", &t.ca_file),
                ("ssl.certificate.location", &t.crt_file),
                ("ssl.key.location", &t.key_file),
            ] {
                if let Some(v) = value {
                    c.set(key, v.value.to_string_lossy());
                }
            }
            if !t.verify_certificate {
                c.set("enable.ssl.certificate.verification", "false");
            }
            if !t.verify_hostname || !t.verify_certificate {
                c.set("ssl.endpoint.identification.algorithm", "none");
            }
        }
        more(&mut c);
        if let Some(options) = self.options {
            for (k, v) in &options.value {
                c.set(k, v);
            }
        }
        c
    }

    /// What serde cannot check of these settings (`what`: "kafka output", "kafka input").
    pub fn check(&self, what: &str) -> Result<(), (Pos, String)> {
        if self.bootstrap_servers.value.trim().is_empty() {
            return Err((
                Pos::of(self.bootstrap_servers),
                format!("{what}: `bootstrap_servers` is empty"),
            ));
        }
        if let Some(s) = self.sasl
            && !["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"].contains(&s.mechanism.value.as_str())
        {
            return Err((
                Pos::of(&s.mechanism),
                format!(
                    "{what}: sasl mechanism {:?} is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512",
                    s.mechanism.value
                ),
            ));
        }
        if let Some(tls) = self.tls {
            Self::check_tls(tls, what)?;
        }
        Ok(())
    }

    /// The `tls:` keys librdkafka (OpenSSL) can honour, and readable files.
    fn check_tls(tls: &TlsConfig, what: &str) -> Result<(), (Pos, String)> {
        if let Some(name) = &tls.server_name {
            return Err((
                Pos::of(name),
                format!(
                    "{what}: tls.server_name is not supported: librdkafka verifies each broker's advertised host name"
                ),
            ));
        }
        if let Some(v) = &tls.min_version
            && v.value != TlsVersion::V1_2
        {
            return Err((
                Pos::of(v),
                format!(
                    "{what}: tls.min_version cannot be raised for Kafka (librdkafka takes OpenSSL's minimum, TLS 1.2)"
                ),
            ));
        }
        // The same file checks as every other TLS client, so a bad file is named here.
        tls.client()
            .map(|_| ())
            .map_err(|(pos, msg)| (pos, format!("{what}: {msg}")))
    }

    /// Where an error librdkafka finds in the settings is reported: `librdkafka_options`
    /// when given, else `bootstrap_servers`.
    pub fn options_pos(&self) -> Pos {
        self.options.as_ref().map_or(Pos::of(self.bootstrap_servers), Pos::of)
    }
}

/// librdkafka's own log lines, into Weir's log: errors and warnings as warnings, the rest
/// at debug level.
pub fn log(level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
    use rdkafka::config::RDKafkaLogLevel as L;
    match level {
        L::Emerg | L::Alert | L::Critical | L::Error | L::Warning => {
            tracing::warn!(facility, "librdkafka: {message}")
        }
        _ => tracing::debug!(facility, "librdkafka: {message}"),
    }
}
