//! Unknown-key detection for the curation config: serde's `deny_unknown_fields` stops at the
//! first unknown key, so the table is walked against a schema first and every unknown key is
//! listed (and removed, so the values of the rest are still checked in the same run). The schema is
//! `config.rs`'s `full_schema`.

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
