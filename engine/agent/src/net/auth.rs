//! HTTP authentication: `auth: { strategy: basic, user, password }` or
//! `auth: { strategy: bearer, token }`, sent by clients and checked by listeners.

use serde::Deserialize;
use serde_saphyr::Spanned;

/// How requests authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthStrategy {
    /// `Authorization: Basic base64(user:password)`.
    Basic,
    /// `Authorization: Bearer TOKEN`.
    Bearer,
}

/// `auth:` of an HTTP client (the `http` and `opentelemetry` outputs) or listener (the
/// `http` input).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpAuthConfig {
    /// `basic` (with `user` and `password`) or `bearer` (with `token`).
    pub strategy: Spanned<AuthStrategy>,
    /// The user, for `basic`.
    #[serde(default)]
    pub user: Option<String>,
    /// The password, for `basic`; a secret.
    #[serde(default)]
    pub password: Option<String>,
    /// The token, for `bearer`; a secret.
    #[serde(default)]
    pub token: Option<String>,
}

impl HttpAuthConfig {
    /// The `Authorization` header value, or what is missing.
    pub fn header(&self) -> Result<String, String> {
        use base64::Engine as _;
        match (self.strategy.value, &self.user, &self.password, &self.token) {
            (AuthStrategy::Basic, Some(user), Some(password), None) => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                Ok(format!("Basic {encoded}"))
            }
            (AuthStrategy::Basic, _, _, _) => {
                Err("`auth.strategy: basic` takes `user` and `password` (and no `token`)".into())
            }
            (AuthStrategy::Bearer, None, None, Some(token)) => Ok(format!("Bearer {token}")),
            (AuthStrategy::Bearer, _, _, _) => {
                Err("`auth.strategy: bearer` takes `token` (and no `user` or `password`)".into())
            }
        }
    }

    /// Whether a request's `Authorization` header is this one (compared in constant time).
    pub fn admits(&self, authorization: Option<&str>) -> bool {
        let (Ok(expected), Some(given)) = (self.header(), authorization) else {
            return false;
        };
        let (a, b) = (expected.as_bytes(), given.trim().as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// The password or token: a secret.
    pub fn secrets(&self) -> Vec<&str> {
        self.password.iter().chain(&self.token).map(String::as_str).collect()
    }
}
