//! `[sampling]`: which policy picks the blocks, and each policy's own parameter table.
//!
//! ```toml
//! [sampling]
//! policy = "lfr"
//! [sampling.lfr]
//! drop = "random"
//! ```
//!
//! The tables are kept as raw TOML here because policies are plugins: the registry entry of
//! each policy parses (and rejects unknown keys in) its own table.

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Debug, PartialEq)]
pub struct SamplingConfig {
    /// Registry name of the policy. Default `"uniform"` (shuffled epochs).
    pub policy: String,
    /// `[sampling.<policy>]` tables, by policy name.
    pub params: BTreeMap<String, toml::Table>,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self {
            policy: "uniform".into(),
            params: BTreeMap::new(),
        }
    }
}

impl SamplingConfig {
    /// The selected policy's table (empty when absent: all defaults).
    pub fn selected_params(&self) -> toml::Table {
        self.params.get(&self.policy).cloned().unwrap_or_default()
    }
}

impl<'de> Deserialize<'de> for SamplingConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut table = toml::Table::deserialize(d)?;
        let policy = match table.remove("policy") {
            None => "uniform".to_string(),
            Some(toml::Value::String(s)) => s,
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "sampling.policy must be a string, got a {}",
                    other.type_str()
                )))
            }
        };
        let mut params = BTreeMap::new();
        for (key, value) in table {
            match value {
                toml::Value::Table(t) => {
                    params.insert(key, t);
                }
                other => {
                    return Err(D::Error::custom(format!(
                        "unknown key `sampling.{key}` (a {}): [sampling] holds `policy` and one \
                         [sampling.<policy>] table per policy",
                        other.type_str()
                    )))
                }
            }
        }
        Ok(Self { policy, params })
    }
}

impl Serialize for SamplingConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut table = toml::Table::new();
        table.insert("policy".into(), toml::Value::String(self.policy.clone()));
        for (k, v) in &self.params {
            table.insert(k.clone(), toml::Value::Table(v.clone()));
        }
        table.serialize(s)
    }
}
