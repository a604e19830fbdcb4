//! What network components share and nothing else needs: Kafka client settings (used by the
//! `kafka` input and output). Components may use this folder; it uses only `config::error`.

pub mod kafka;
