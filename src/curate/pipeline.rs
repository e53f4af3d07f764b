//! The stages in order, each on a batch of documents: per-document work runs in parallel
//! (rayon), decisions that touch dedup state run sequentially in input order, so the result is
//! independent of the thread count.
//!
//! Order: exact -> heuristics -> minhash -> bloom -> quality -> mix. Cheap filters first, so the
//! dedup state and the classifier only see documents that survived them. Consequence: a
//! near-duplicate of a document that a heuristic removed is judged on its own merits.

use std::time::Instant;

use rayon::prelude::*;

use super::bloom::{line_ngrams, Bff, BffDecision};
use super::config::CurateConfig;
use super::exact::ExactDedup;
use super::heuristics::{first_failing, DocView, HeuristicsConfig};
use super::lines::{edit, LineEdit};
use super::minhash::{LshIndex, MinHasher};
use super::mix::Mixer;
use super::quality::QualityModel;
use super::report::{Counts, Report};
use super::{CurateError, Doc};

pub struct Pipeline {
    exact: Option<ExactDedup>,
    heuristics: Option<HeuristicsConfig>,
    minhash: Option<(MinHasher, LshIndex)>,
    bloom: Option<Bff>,
    quality: Option<(QualityModel, Option<f64>)>,
    pub mixer: Option<Mixer>,
    pub report: Report,
}

impl Pipeline {
    pub fn new(cfg: &CurateConfig) -> Result<Pipeline, CurateError> {
        let exact = cfg
            .exact
            .as_ref()
            .filter(|e| e.enabled)
            .map(|_| ExactDedup::default());
        let heuristics = cfg.heuristics.clone().filter(|h| h.enabled);
        let minhash = cfg.minhash.as_ref().filter(|m| m.enabled).map(|m| {
            (
                MinHasher::new(m.num_perm, m.ngram, cfg.seed),
                LshIndex::new(m),
            )
        });
        let bloom = cfg.bloom.as_ref().filter(|b| b.enabled).map(Bff::new);
        let quality = match cfg.quality.as_ref().filter(|q| q.enabled) {
            Some(q) => Some((QualityModel::load(&q.model, &q.label)?, q.threshold)),
            None => None,
        };
        let mixer = cfg
            .mix
            .as_ref()
            .filter(|m| m.enabled)
            .map(|m| Mixer::new(m.weights.clone(), cfg.seed));
        let mut stages = Vec::new();
        for (on, name) in [
            (exact.is_some(), "exact"),
            (heuristics.is_some(), "heuristics"),
            (minhash.is_some(), "minhash"),
            (bloom.is_some(), "bloom"),
            (quality.is_some(), "quality"),
            (mixer.is_some(), "mix"),
        ] {
            if on {
                stages.push(name);
            }
        }
        let report = Report::new(&stages, cfg.report.examples, cfg.report.example_chars);
        Ok(Pipeline {
            exact,
            heuristics,
            minhash,
            bloom,
            quality,
            mixer,
            report,
        })
    }

    /// Runs the filtering stages (all but mixing) on a batch. `stateful_only`: stop after the
    /// last dedup stage (used to rebuild dedup state on `--resume`).
    pub fn filter(&mut self, mut docs: Vec<Doc>, stateful_only: bool) -> Vec<Doc> {
        docs = self.timed("exact", docs, Self::exact);
        docs = self.timed("heuristics", docs, Self::heuristics);
        docs = self.timed("minhash", docs, Self::minhash);
        docs = self.timed("bloom", docs, Self::bloom);
        if !stateful_only {
            docs = self.timed("quality", docs, Self::quality);
        }
        docs
    }

    fn timed(
        &mut self,
        stage: &str,
        docs: Vec<Doc>,
        f: fn(&mut Self, Vec<Doc>) -> Vec<Doc>,
    ) -> Vec<Doc> {
        let Some(st) = self.report.stages.iter_mut().find(|s| s.name == stage) else {
            return docs;
        };
        for d in &docs {
            st.input.add(d.counts);
        }
        let t = Instant::now();
        let out = f(self, docs);
        self.report.stage_mut(stage).seconds += t.elapsed().as_secs_f64();
        out
    }

    fn drop_doc(&mut self, stage: &str, rule: &str, d: &Doc) {
        self.report
            .removed(stage, rule, &d.source, d.counts, true, &d.text);
    }

    fn exact(&mut self, docs: Vec<Doc>) -> Vec<Doc> {
        let keys: Vec<u64> = docs.par_iter().map(|d| ExactDedup::key(&d.text)).collect();
        let mut out = Vec::with_capacity(docs.len());
        for (d, key) in docs.into_iter().zip(keys) {
            let state = self
                .exact
                .as_mut()
                .unwrap_or_else(|| unreachable!("stage enabled"));
            if state.insert(key) {
                out.push(d);
            } else {
                self.drop_doc("exact", "exact_dup", &d);
            }
        }
        out
    }

    fn heuristics(&mut self, docs: Vec<Doc>) -> Vec<Doc> {
        let Some(cfg) = self.heuristics.take() else {
            return docs;
        };
        let outcomes: Vec<Result<LineEdit, (&'static str, f64)>> =
            docs.par_iter().map(|d| judge(&d.text, &cfg)).collect();
        let mut out = Vec::with_capacity(docs.len());
        for (mut d, outcome) in docs.into_iter().zip(outcomes) {
            match outcome {
                Err((rule, _value)) => self.drop_doc("heuristics", rule, &d),
                Ok(line_edit) => {
                    if let Some(text) = line_edit.text {
                        for (rule, r) in &line_edit.removed {
                            let c = Counts {
                                docs: 0,
                                bytes: r.bytes,
                                words: r.words,
                            };
                            self.report.removed(
                                "heuristics",
                                rule,
                                &d.source,
                                c,
                                false,
                                &r.example,
                            );
                            self.report
                                .rules
                                .entry(rule.to_string())
                                .or_default()
                                .trimmed
                                .docs += 1;
                        }
                        d.set_text(text);
                    }
                    out.push(d);
                }
            }
        }
        self.heuristics = Some(cfg);
        out
    }

    fn minhash(&mut self, docs: Vec<Doc>) -> Vec<Doc> {
        let Some((hasher, index)) = self.minhash.as_mut() else {
            return docs;
        };
        let sigs: Vec<Option<Vec<u32>>> =
            docs.par_iter().map(|d| hasher.signature(&d.text)).collect();
        let mut dropped = Vec::new();
        let mut out = Vec::with_capacity(docs.len());
        for (d, sig) in docs.into_iter().zip(sigs) {
            match sig.and_then(|s| index.offer(s)) {
                Some(_similarity) => dropped.push(d),
                None => out.push(d),
            }
        }
        for d in &dropped {
            self.drop_doc("minhash", "minhash_dup", d);
        }
        out
    }

    fn bloom(&mut self, docs: Vec<Doc>) -> Vec<Doc> {
        let Some(bff) = self.bloom.as_mut() else {
            return docs;
        };
        let n = bff.ngram;
        let grams: Vec<Vec<Vec<u64>>> = docs.par_iter().map(|d| line_ngrams(&d.text, n)).collect();
        let decisions: Vec<BffDecision> = grams.iter().map(|g| bff.offer(g)).collect();
        let mut out = Vec::with_capacity(docs.len());
        for (mut d, decision) in docs.into_iter().zip(decisions) {
            match decision {
                BffDecision::Keep => out.push(d),
                BffDecision::Drop => self.drop_doc("bloom", "bff_doc", &d),
                BffDecision::RemoveLines(idx) => {
                    let (kept, removed) = split_lines(&d.text, &idx);
                    let mut c = Counts::of(&removed);
                    c.docs = 0;
                    self.report
                        .removed("bloom", "bff_paragraph", &d.source, c, false, &removed);
                    self.report
                        .rules
                        .entry("bff_paragraph".into())
                        .or_default()
                        .trimmed
                        .docs += 1;
                    d.set_text(kept);
                    out.push(d);
                }
            }
        }
        out
    }

    fn quality(&mut self, mut docs: Vec<Doc>) -> Vec<Doc> {
        let Some((model, threshold)) = self.quality.as_ref() else {
            return docs;
        };
        let threshold = *threshold;
        let scores: Vec<f64> = docs.par_iter().map(|d| model.score(&d.text)).collect();
        for (d, s) in docs.iter_mut().zip(scores) {
            d.score = Some(s);
        }
        let Some(t) = threshold else {
            return docs; // keep_fraction: decided once every score is known
        };
        let (kept, dropped): (Vec<Doc>, Vec<Doc>) = docs
            .into_iter()
            .partition(|d| d.score.is_some_and(|s| s >= t));
        for d in &dropped {
            self.drop_doc("quality", "quality", d);
        }
        kept
    }

    /// Records that the top-fraction cut removed `d` (after the spool pass).
    pub fn quality_cut(&mut self, d: &Doc) {
        self.drop_doc("quality", "quality", d);
    }

    /// Copies of `d` in the output (mixing), recording drops and additions.
    pub fn copies(&mut self, d: &Doc) -> u64 {
        let Some(mixer) = self.mixer.as_ref() else {
            return 1;
        };
        let t = Instant::now();
        let n = mixer.copies(&d.source, &d.text);
        let st = self.report.stage_mut("mix");
        st.input.add(d.counts);
        for _ in 1..n {
            st.added.add(d.counts);
        }
        st.seconds += t.elapsed().as_secs_f64();
        if n == 0 {
            self.drop_doc("mix", "mix_drop", d);
        }
        n
    }

    /// Dedup state sizes, for the report.
    pub fn state_summary(&self) -> Vec<(&'static str, f64)> {
        let mut s = Vec::new();
        if let Some(e) = &self.exact {
            s.push(("exact_hashes", e.len() as f64));
        }
        if let Some((_, idx)) = &self.minhash {
            s.push(("minhash_indexed_docs", idx.len() as f64));
        }
        if let Some(b) = &self.bloom {
            let f = b.filter();
            s.push(("bloom_bytes", f.memory_bytes() as f64));
            s.push(("bloom_hash_functions", f64::from(f.hash_functions())));
            s.push(("bloom_fill", f.fill()));
            s.push(("bloom_fp_rate_now", f.current_fp_rate()));
        }
        s
    }
}

/// The heuristics' decision on one text: the failing rule, or the line edit.
fn judge(text: &str, cfg: &HeuristicsConfig) -> Result<LineEdit, (&'static str, f64)> {
    let view = DocView::new(text);
    if let Some(fail) = first_failing(&view, cfg) {
        return Err(fail);
    }
    let line_edit = edit(text, &cfg.lines, |id| cfg.is_enabled(id));
    let total = view.words.len().max(1) as f64;
    let frac = line_edit.removed_words as f64 / total;
    if cfg.is_enabled("line_removal_frac") && frac > cfg.lines.max_removed_word_frac {
        return Err(("line_removal_frac", frac));
    }
    if line_edit
        .text
        .as_deref()
        .is_some_and(|t| t.trim().is_empty())
    {
        return Err(("line_removal_frac", frac));
    }
    Ok(line_edit)
}

/// (`text` without the lines at `remove` (sorted), the removed lines joined).
fn split_lines(text: &str, remove: &[usize]) -> (String, String) {
    let mut kept = String::with_capacity(text.len());
    let mut removed = String::new();
    let mut r = remove.iter().peekable();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if r.peek() == Some(&&i) {
            r.next();
            removed.push_str(line);
        } else {
            kept.push_str(line);
        }
    }
    (kept, removed)
}
