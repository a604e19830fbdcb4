//! What network components share and nothing else needs: the agent's tokio runtime
//! ([`runtime`]), the `tls:` block ([`tls`]), HTTP `auth:` ([`auth`]), HTTPS for the HTTP clients ([`https`]) and Kafka
//! client settings ([`kafka`]). Components may use
//! this folder; it uses only `config::error`.

pub mod auth;
pub mod https;
pub mod kafka;
pub mod runtime;
pub mod tls;
