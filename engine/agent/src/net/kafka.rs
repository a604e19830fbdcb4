//! Kafka client settings shared by the `kafka` input and output: brokers, SASL, TLS and
//! librdkafka options passed through.

use std::collections::BTreeMap;

use rdkafka::config::ClientConfig;
use serde::Deserialize;
use serde_saphyr::Spanned;

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

/// `tls:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaTlsConfig {
    /// CA certificates (PEM) to verify the brokers with (default: the system's).
    #[serde(default)]
    pub ca_file: Option<String>,
    /// Client certificate (PEM), for brokers that authenticate clients.
    #[serde(default)]
    pub cert_file: Option<String>,
    /// The client certificate's key (PEM).
    #[serde(default)]
    pub key_file: Option<String>,
    /// Verify the brokers' certificates and host names (default true).
    #[serde(default = "yes")]
    pub verify: bool,
}

fn yes() -> bool {
    true
}

/// The settings every Kafka client of a pipeline has, borrowed from its config.
#[derive(Debug, Clone, Copy)]
pub struct Client<'a> {
    /// `bootstrap_servers`.
    pub bootstrap_servers: &'a Spanned<String>,
    /// `sasl`.
    pub sasl: &'a Option<KafkaSaslConfig>,
    /// `tls`.
    pub tls: &'a Option<KafkaTlsConfig>,
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
                ("ssl.certificate.location", &t.cert_file),
                ("ssl.key.location", &t.key_file),
            ] {
                if let Some(v) = value {
                    c.set(key, v);
                }
            }
            if !t.verify {
                c.set("enable.ssl.certificate.verification", "false")
                    .set("ssl.endpoint.identification.algorithm", "none");
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
        Ok(())
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
