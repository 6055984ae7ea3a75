//! The repository `config` file: format version, repository id, chunker polynomial.

use crate::chunker::Polynomial;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Config {
    pub version: u32,
    pub id: String,
    pub chunker_polynomial: String,
}

impl Config {
    pub fn new(version: u32, pol: Polynomial) -> Config {
        Config {
            version,
            id: crate::Id::random().to_hex(),
            chunker_polynomial: pol.to_hex(),
        }
    }

    /// Checks what restic checks on load: a known version and an irreducible polynomial.
    pub fn validate(&self) -> crate::Result<Polynomial> {
        if self.version != 1 && self.version != 2 {
            crate::error::bail!("config: unsupported repository version {}", self.version);
        }
        let pol = Polynomial::from_hex(&self.chunker_polynomial)
            .map_err(|e| anyhow::anyhow!("config: invalid chunker polynomial: {e}"))?;
        if pol.degree() > 53 || !pol.is_irreducible() {
            crate::error::bail!(
                "config: chunker polynomial {} is not irreducible of degree ≤ 53",
                self.chunker_polynomial
            );
        }
        Ok(pol)
    }
}
