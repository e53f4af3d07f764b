//! What each stage and rule removed, per source, with examples: `curate.json` (this struct)
//! and `curate.md` (the same as tables). Counts are deterministic; seconds and MB/s are not.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

/// Documents, UTF-8 bytes and whitespace-separated words.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub docs: u64,
    pub bytes: u64,
    pub words: u64,
}

impl Counts {
    pub fn of(text: &str) -> Counts {
        Counts {
            docs: 1,
            bytes: text.len() as u64,
            words: text.split_whitespace().count() as u64,
        }
    }

    pub fn add(&mut self, o: Counts) {
        self.docs += o.docs;
        self.bytes += o.bytes;
        self.words += o.words;
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StageReport {
    pub name: String,
    /// What reached the stage.
    pub input: Counts,
    /// What it removed (whole documents and removed lines/paragraphs; `docs` counts only
    /// whole documents).
    pub removed: Counts,
    /// Copies it added (mixing only).
    pub added: Counts,
    pub seconds: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RuleReport {
    pub stage: String,
    /// Whole documents removed by this rule, with their size.
    pub dropped: Counts,
    /// Lines/paragraphs removed from documents that were kept (docs = documents touched).
    pub trimmed: Counts,
    /// The first removed texts, truncated.
    pub examples: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SourceReport {
    pub input: Counts,
    pub output: Counts,
    /// Per stage, what it removed from this source.
    pub removed: BTreeMap<String, Counts>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Report {
    pub input: Counts,
    pub output: Counts,
    pub stages: Vec<StageReport>,
    pub rules: BTreeMap<String, RuleReport>,
    pub sources: BTreeMap<String, SourceReport>,
    /// Dedup state sizes and the Bloom filter's fill (name -> value).
    pub state: BTreeMap<String, f64>,
    pub shards: Vec<String>,
    #[serde(skip)]
    pub max_examples: usize,
    #[serde(skip)]
    pub example_chars: usize,
}

impl Report {
    pub fn new(stages: &[&str], max_examples: usize, example_chars: usize) -> Report {
        Report {
            stages: stages
                .iter()
                .map(|s| StageReport {
                    name: s.to_string(),
                    ..StageReport::default()
                })
                .collect(),
            max_examples,
            example_chars,
            ..Report::default()
        }
    }

    pub fn stage_mut(&mut self, name: &str) -> &mut StageReport {
        let i = self.stages.iter().position(|s| s.name == name);
        let i = i.unwrap_or_else(|| unreachable!("stage {name} was registered"));
        &mut self.stages[i]
    }

    pub fn read_input(&mut self, source: &str, c: Counts) {
        self.input.add(c);
        self.sources.entry(source.into()).or_default().input.add(c);
    }

    pub fn wrote(&mut self, source: &str, c: Counts) {
        self.output.add(c);
        self.sources.entry(source.into()).or_default().output.add(c);
    }

    /// Records that `rule` of `stage` removed `removed` from a document of `source`;
    /// `whole`: the document was dropped (else lines of it were).
    pub fn removed(
        &mut self,
        stage: &str,
        rule: &str,
        source: &str,
        removed: Counts,
        whole: bool,
        text: &str,
    ) {
        self.stage_mut(stage).removed.add(removed);
        let src = self.sources.entry(source.into()).or_default();
        src.removed.entry(stage.into()).or_default().add(removed);
        let (max, chars) = (self.max_examples, self.example_chars);
        let r = self.rules.entry(rule.into()).or_default();
        r.stage = stage.into();
        if whole {
            r.dropped.add(removed);
        } else {
            r.trimmed.add(removed);
        }
        if r.examples.len() < max {
            r.examples.push(truncate(text, chars));
        }
    }

    /// The report as Markdown tables.
    pub fn to_markdown(&self) -> String {
        let mut s = String::from("# Curation report\n\n");
        let _ = writeln!(
            s,
            "Input: {}. Output: {}.\n",
            fmt(self.input),
            fmt(self.output)
        );
        s.push_str(
            "| stage | docs in | MB in | docs removed | MB removed | words removed | s | MB/s |\n",
        );
        s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|\n");
        for st in &self.stages {
            let mb = st.input.bytes as f64 / 1e6;
            let rate = if st.seconds > 0.0 {
                mb / st.seconds
            } else {
                0.0
            };
            let _ = writeln!(
                s,
                "| {} | {} | {:.1} | {} | {:.2} | {} | {:.1} | {:.1} |",
                st.name,
                st.input.docs,
                mb,
                st.removed.docs,
                st.removed.bytes as f64 / 1e6,
                st.removed.words,
                st.seconds,
                rate
            );
        }
        self.rules_markdown(&mut s);
        self.sources_markdown(&mut s);
        s
    }

    fn rules_markdown(&self, s: &mut String) {
        s.push_str("\n## Rules\n\n| rule | stage | docs dropped | words dropped | docs trimmed | words trimmed |\n|---|---|---:|---:|---:|---:|\n");
        for (name, r) in &self.rules {
            let _ = writeln!(
                s,
                "| {name} | {} | {} | {} | {} | {} |",
                r.stage, r.dropped.docs, r.dropped.words, r.trimmed.docs, r.trimmed.words
            );
        }
        s.push_str("\n### Examples\n");
        for (name, r) in &self.rules {
            let _ = writeln!(s, "\n**{name}**\n");
            for e in &r.examples {
                let _ = writeln!(s, "- `{}`", e.replace(['\n', '`', '|'], " "));
            }
        }
    }

    fn sources_markdown(&self, s: &mut String) {
        let stages: Vec<&str> = self.stages.iter().map(|x| x.name.as_str()).collect();
        let _ = write!(s, "\n## Sources (docs)\n\n| source | in | out |");
        for st in &stages {
            let _ = write!(s, " -{st} |");
        }
        let _ = write!(s, "\n|---|---:|---:|{}\n", "---:|".repeat(stages.len()));
        for (name, r) in &self.sources {
            let _ = write!(s, "| {name} | {} | {} |", r.input.docs, r.output.docs);
            for st in &stages {
                let _ = write!(s, " {} |", r.removed.get(*st).map_or(0, |c| c.docs));
            }
            s.push('\n');
        }
    }
}

fn fmt(c: Counts) -> String {
    format!(
        "{} docs, {:.1} MB, {} words",
        c.docs,
        c.bytes as f64 / 1e6,
        c.words
    )
}

/// The first `chars` characters of `text`, with "…" if cut.
pub fn truncate(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}
