//! What network components share and nothing else needs: the `tls:` block ([`tls`]), HTTPS
//! for the HTTP clients ([`https`]) and Kafka client settings ([`kafka`]). Components may use
//! this folder; it uses only `config::error`.

pub mod https;
pub mod kafka;
pub mod tls;
