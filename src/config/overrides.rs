//! `--set key.path=value` overrides, applied to the raw TOML table before deserialisation, so
//! that serde's `deny_unknown_fields` and type checks judge them exactly like file contents.

use super::ConfigError;

/// Applies one `key.path=value` override. The value is parsed as a TOML value (`3`, `1e-3`,
/// `true`, `"text"`, `[1, 2]`); anything that is not valid TOML is taken as a bare string,
/// so `--set run.name=exp1` works without quotes.
pub fn apply(table: &mut toml::Table, arg: &str) -> Result<(), ConfigError> {
    let err = |message: String| ConfigError::Override {
        arg: arg.to_string(),
        message,
    };
    let (key, raw) = arg
        .split_once('=')
        .ok_or_else(|| err("expected key.path=value".into()))?;
    let parts: Vec<&str> = key.trim().split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(err(format!("malformed key `{key}`")));
    }
    let value = parse_value(raw.trim());
    let (leaf, sections) = parts.split_last().expect("split yields at least one part");
    let mut node = table;
    for section in sections {
        let entry = node
            .entry(section.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        node = entry
            .as_table_mut()
            .ok_or_else(|| err(format!("`{section}` is a value, not a section")))?;
    }
    if let Some(old) = node.get(*leaf) {
        if !same_kind(old, &value) {
            return Err(err(format!(
                "type mismatch for `{key}`: the config has a {}, the override is a {}",
                old.type_str(),
                value.type_str()
            )));
        }
    }
    node.insert(leaf.to_string(), coerce(node.get(*leaf), value));
    Ok(())
}

fn parse_value(raw: &str) -> toml::Value {
    match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.into())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

/// Integers are accepted where the file has a float (`--set optim.lr=1` means 1.0).
fn same_kind(old: &toml::Value, new: &toml::Value) -> bool {
    use toml::Value::*;
    matches!((old, new), (Float(_), Integer(_)))
        || std::mem::discriminant(old) == std::mem::discriminant(new)
}

fn coerce(old: Option<&toml::Value>, new: toml::Value) -> toml::Value {
    match (old, new) {
        (Some(toml::Value::Float(_)), toml::Value::Integer(i)) => toml::Value::Float(i as f64),
        (_, v) => v,
    }
}
