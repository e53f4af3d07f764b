//! The run's data as far as the report needs it: source names (from the prepared manifest)
//! and decoded text previews of blocks (from the training token store). Any failure becomes
//! a note in the report, never an error: the ledger statistics stand on their own.

use std::path::{Path, PathBuf};

use super::header::LedgerHeader;
use crate::data::{load_prepared, prepared_tokenizer, Blocks, Manifest, Tokenizer, MANIFEST_FILE};

/// What the report could load about the run's data.
pub(super) struct RunData {
    sources: Vec<String>,
    text: Option<(Blocks, Tokenizer)>,
    /// Why names or previews are missing.
    pub note: Option<String>,
}

impl RunData {
    /// Reads `run_dir/config.toml` for the prepared directory, its manifest for the source
    /// names and, if `want_text`, the training store for previews (`load_prepared` validates
    /// every token: O(corpus), which is why it is skipped when no preview is asked for).
    pub(super) fn load(run_dir: &Path, header: &LedgerHeader, want_text: bool) -> RunData {
        let mut data = RunData {
            sources: Vec::new(),
            text: None,
            note: None,
        };
        let prepared = match prepared_dir(run_dir) {
            Ok(dir) => dir,
            Err(note) => return data.with_note(note),
        };
        match read_source_names(&prepared) {
            Ok(names) => data.sources = names,
            Err(note) => return data.with_note(note),
        }
        if want_text {
            match load_text(&prepared, header) {
                Ok(text) => data.text = Some(text),
                Err(note) => return data.with_note(note),
            }
        }
        data
    }

    fn with_note(mut self, note: String) -> Self {
        self.note = Some(note);
        self
    }

    /// The manifest's name for `id`, else `source <id>`.
    pub(super) fn source_name(&self, id: u16) -> String {
        self.sources
            .get(usize::from(id))
            .cloned()
            .unwrap_or_else(|| format!("source {id}"))
    }

    /// The first `chars` characters of block `id` on one line, or `None` without data.
    pub(super) fn preview(&self, id: u64, chars: usize) -> Option<String> {
        let (blocks, tok) = self.text.as_ref()?;
        let id = usize::try_from(id).ok().filter(|&i| i < blocks.len())?;
        // A GPT-2 token decodes to at least one character (a split UTF-8 sequence to U+FFFD),
        // so `chars` tokens are enough.
        let n = chars.min(blocks.block_len());
        let mut ids = vec![0u32; n];
        blocks.store().read(blocks.start_of(id), &mut ids);
        Some(one_line(&tok.decode(&ids), chars))
    }
}

fn prepared_dir(run_dir: &Path) -> Result<PathBuf, String> {
    let path = run_dir.join("config.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "no source names or previews: cannot read {}: {e}",
            path.display()
        )
    })?;
    // Only `data.prepared_dir` is needed: the saved config is the resolved one, so the key is
    // there, and the rest of the config is the trainer's business, not the ledger's.
    let table: toml::Table = toml::from_str(&text)
        .map_err(|e| format!("no source names or previews: {}: {e}", path.display()))?;
    table
        .get("data")
        .and_then(|d| d.get("prepared_dir"))
        .and_then(|p| p.as_str())
        .map(PathBuf::from)
        .ok_or_else(|| {
            format!(
                "no source names or previews: {} has no data.prepared_dir",
                path.display()
            )
        })
}

fn read_source_names(prepared: &Path) -> Result<Vec<String>, String> {
    let path = prepared.join(MANIFEST_FILE);
    let gone = |e: String| {
        format!(
            "no source names or previews: the run's prepared data is not available ({}: {e}; \
             relative paths are resolved against the current directory, as in training)",
            path.display()
        )
    };
    let text = std::fs::read_to_string(&path).map_err(|e| gone(e.to_string()))?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| gone(e.to_string()))?;
    Ok(manifest.sources)
}

fn load_text(prepared: &Path, header: &LedgerHeader) -> Result<(Blocks, Tokenizer), String> {
    let no_previews = |e: String| format!("no previews: {e}");
    let data = load_prepared(prepared).map_err(|e| no_previews(e.to_string()))?;
    let blocks = Blocks::new(data.train, header.block_len as usize)
        .map_err(|e| no_previews(e.to_string()))?;
    if blocks.len() as u64 != header.block_count {
        return Err(no_previews(format!(
            "{} holds {} blocks of {} tokens but the ledger has {}: the data changed since \
             the run",
            prepared.display(),
            blocks.len(),
            header.block_len,
            header.block_count
        )));
    }
    let tok =
        prepared_tokenizer(prepared, &data.manifest).map_err(|e| no_previews(e.to_string()))?;
    Ok((blocks, tok))
}

/// `text` on one line: newlines as `⏎`, other control characters as spaces, cut to `chars`
/// characters with `…` when longer.
pub(super) fn one_line(text: &str, chars: usize) -> String {
    let mut out = String::new();
    let mut cleaned = text.chars().filter(|&c| c != '\r').map(|c| match c {
        '\n' => '⏎',
        c if c.is_control() => ' ',
        c => c,
    });
    for c in cleaned.by_ref().take(chars) {
        out.push(c);
    }
    if cleaned.next().is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_marks_newlines_and_truncates() {
        assert_eq!(one_line("a\r\nb\tc", 10), "a⏎b c");
        assert_eq!(one_line("abcdef", 3), "abc…");
        assert_eq!(one_line("abc", 3), "abc");
        assert_eq!(one_line("", 3), "");
    }
}
