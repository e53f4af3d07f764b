//! Unknown-key detection for the curation config: serde's `deny_unknown_fields` stops at the
//! first unknown key, so the table is walked against a schema first and every unknown key is
//! listed (and removed, so the values of the rest are still checked in the same run).

use super::config::{
    BloomConfig, CurateConfig, ExactConfig, MinHashConfig, MixConfig, OutputConfig, OutputFormat,
    QualityConfig, ReportConfig,
};
use super::heuristics::HeuristicsConfig;

/// A config with every table present and every optional key set: the key schema.
pub(super) fn full_schema() -> toml::Table {
    let full = CurateConfig {
        inputs: vec![],
        seed: 0,
        batch_mib: 1,
        output: OutputConfig {
            dir: "x".into(),
            format: OutputFormat::Jsonl,
            shard_mib: 1,
            zstd_level: 1,
        },
        report: ReportConfig::default(),
        exact: Some(ExactConfig::default()),
        heuristics: Some(HeuristicsConfig::default()),
        minhash: Some(MinHashConfig::default()),
        bloom: Some(BloomConfig::default()),
        quality: Some(QualityConfig {
            threshold: Some(0.5),
            keep_fraction: Some(0.5),
            ..QualityConfig::default()
        }),
        mix: Some(MixConfig::default()),
    };
    toml::Table::try_from(&full).unwrap_or_default()
}

/// Lists and removes the keys of `table` that `schema` lacks. A schema table with no keys (a
/// map such as `mix.weights`) accepts any key.
pub(super) fn unknown_keys(
    table: &mut toml::Table,
    schema: &toml::Table,
    prefix: &str,
    p: &mut Vec<String>,
) {
    if schema.is_empty() {
        return;
    }
    table.retain(|key, value| {
        let path = format!("{prefix}{key}");
        match (schema.get(key), value) {
            (None, _) => {
                p.push(format!("unknown key `{path}`"));
                false
            }
            (Some(toml::Value::Table(sub)), toml::Value::Table(t)) => {
                unknown_keys(t, sub, &format!("{path}."), p);
                true
            }
            _ => true,
        }
    });
}
