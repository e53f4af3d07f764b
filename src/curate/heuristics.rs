//! Heuristic document filters of RefinedWeb (Penedo et al. 2023) and Gopher (Rae et al. 2021,
//! appendix A) with the thresholds DCLM-Baseline uses (Li et al. 2024, appendix on the
//! RefinedWeb reproduction). Each rule is a pure function of the document that returns a
//! [`Verdict`]; the pipeline acts on it.
//!
//! Order per document: document rules on the original text (cheapest first, the first failing
//! rule names the removal), then the line modifiers of `lines.rs`, then `line_removal_frac`.

use serde::{Deserialize, Serialize};

use super::checks::{check_range, yes};
use super::lines::LineConfig;
use super::repetition;

/// The eight stop words of Gopher's filter.
pub const STOP_WORDS: [&str; 8] = ["the", "be", "to", "of", "and", "that", "have", "with"];
/// Line-start characters counted as bullets (RefinedWeb / DCLM).
const BULLETS: [char; 5] = ['●', '•', '*', '-', '‣'];

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeuristicsConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Rule ids to skip, e.g. `["stop_words"]`.
    #[serde(default)]
    pub disable: Vec<String>,
    /// `page_words`: whitespace words per document, inclusive. Default 50 ..= 100,000.
    #[serde(default = "d_min_words")]
    pub min_words: usize,
    #[serde(default = "d_max_words")]
    pub max_words: usize,
    /// `mean_word_length`: mean characters per word (punctuation trimmed). Default 3 ..= 10.
    #[serde(default = "d_min_wl")]
    pub min_mean_word_length: f64,
    #[serde(default = "d_max_wl")]
    pub max_mean_word_length: f64,
    /// `symbol_ratio`: (`#` + `...` + `…`) per word, at most. Default 0.1.
    #[serde(default = "d_0_1")]
    pub max_symbol_ratio: f64,
    /// `bullet_lines`: fraction of lines starting with a bullet, at most. Default 0.9.
    #[serde(default = "d_0_9")]
    pub max_bullet_lines: f64,
    /// `ellipsis_lines`: fraction of lines ending in `...`/`…`, at most. Default 0.3.
    #[serde(default = "d_0_3")]
    pub max_ellipsis_lines: f64,
    /// `non_alpha_words`: fraction of words without an alphabetic character, at most.
    /// Default 0.2.
    #[serde(default = "d_0_2")]
    pub max_non_alpha_words: f64,
    /// `stop_words`: occurrences of [`STOP_WORDS`], at least. Default 2.
    #[serde(default = "d_stop")]
    pub min_stop_words: usize,
    /// Gopher repetition thresholds (`dup_line_frac`, ...). See `repetition.rs`.
    #[serde(default)]
    pub repetition: repetition::RepetitionConfig,
    /// Line modifiers and `line_removal_frac`. See `lines.rs`.
    #[serde(default)]
    pub lines: LineConfig,
}

fn d_min_words() -> usize {
    50
}
fn d_max_words() -> usize {
    100_000
}
fn d_min_wl() -> f64 {
    3.0
}
fn d_max_wl() -> f64 {
    10.0
}
fn d_0_1() -> f64 {
    0.1
}
fn d_0_9() -> f64 {
    0.9
}
fn d_0_3() -> f64 {
    0.3
}
fn d_0_2() -> f64 {
    0.2
}
fn d_stop() -> usize {
    2
}

impl Default for HeuristicsConfig {
    fn default() -> Self {
        toml::from_str("").unwrap_or_else(|_| unreachable!("every field has a default"))
    }
}

impl HeuristicsConfig {
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        for id in &self.disable {
            if !all_rule_ids().contains(&id.as_str()) {
                p.push(format!(
                    "heuristics.disable: unknown rule {id:?} (known: {})",
                    all_rule_ids().join(", ")
                ));
            }
        }
        if self.min_words > self.max_words {
            p.push("heuristics.min_words must be <= heuristics.max_words".into());
        }
        if self.min_mean_word_length > self.max_mean_word_length {
            p.push("heuristics.min_mean_word_length must be <= max_mean_word_length".into());
        }
        for (name, v) in [
            ("max_symbol_ratio", self.max_symbol_ratio),
            ("max_bullet_lines", self.max_bullet_lines),
            ("max_ellipsis_lines", self.max_ellipsis_lines),
            ("max_non_alpha_words", self.max_non_alpha_words),
        ] {
            check_range(&format!("heuristics.{name}"), v, 0.0, 1.0, false, &mut p);
        }
        p.extend(self.repetition.problems());
        p.extend(self.lines.problems());
        p
    }

    pub fn is_enabled(&self, rule: &str) -> bool {
        !self.disable.iter().any(|d| d == rule)
    }
}

/// Every rule id, document rules then line modifiers.
pub fn all_rule_ids() -> Vec<&'static str> {
    let mut ids: Vec<&'static str> = DOC_RULES.iter().map(|r| r.id).collect();
    ids.extend(repetition::RULE_IDS);
    ids.extend(super::lines::RULE_IDS);
    ids
}

/// A rule's decision: keep, or drop with the measured value that failed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Verdict {
    Keep,
    Drop(f64),
}

impl Verdict {
    /// Drop with `value` unless `ok`.
    pub fn keep_if(ok: bool, value: f64) -> Verdict {
        if ok {
            Verdict::Keep
        } else {
            Verdict::Drop(value)
        }
    }
}

/// The pieces of a document the rules share, computed once.
pub struct DocView<'a> {
    pub text: &'a str,
    pub words: Vec<&'a str>,
    /// Non-blank lines, trimmed.
    pub lines: Vec<&'a str>,
}

impl<'a> DocView<'a> {
    pub fn new(text: &'a str) -> DocView<'a> {
        DocView {
            text,
            words: text.split_whitespace().collect(),
            lines: text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect(),
        }
    }
}

pub type RuleFn = fn(&DocView, &HeuristicsConfig) -> Verdict;

/// A named document rule.
pub struct Rule {
    pub id: &'static str,
    pub check: RuleFn,
}

/// Document rules, cheapest first.
pub const DOC_RULES: [Rule; 7] = [
    Rule {
        id: "page_words",
        check: page_words,
    },
    Rule {
        id: "mean_word_length",
        check: mean_word_length,
    },
    Rule {
        id: "symbol_ratio",
        check: symbol_ratio,
    },
    Rule {
        id: "bullet_lines",
        check: bullet_lines,
    },
    Rule {
        id: "ellipsis_lines",
        check: ellipsis_lines,
    },
    Rule {
        id: "non_alpha_words",
        check: non_alpha_words,
    },
    Rule {
        id: "stop_words",
        check: stop_words,
    },
];

fn fraction(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

pub fn page_words(d: &DocView, c: &HeuristicsConfig) -> Verdict {
    let n = d.words.len();
    Verdict::keep_if((c.min_words..=c.max_words).contains(&n), n as f64)
}

/// A word without leading and trailing punctuation.
fn trim_punct(w: &str) -> &str {
    w.trim_matches(|ch: char| !ch.is_alphanumeric())
}

pub fn mean_word_length(d: &DocView, c: &HeuristicsConfig) -> Verdict {
    let (chars, n) = d
        .words
        .iter()
        .map(|w| trim_punct(w))
        .filter(|w| !w.is_empty())
        .fold((0usize, 0usize), |(chars, n), w| {
            (chars + w.chars().count(), n + 1)
        });
    let mean = fraction(chars, n);
    Verdict::keep_if(
        mean >= c.min_mean_word_length && mean <= c.max_mean_word_length,
        mean,
    )
}

pub fn symbol_ratio(d: &DocView, c: &HeuristicsConfig) -> Verdict {
    let symbols =
        d.text.matches('#').count() + d.text.matches("...").count() + d.text.matches('…').count();
    let r = fraction(symbols, d.words.len());
    Verdict::keep_if(r <= c.max_symbol_ratio, r)
}

pub fn bullet_lines(d: &DocView, c: &HeuristicsConfig) -> Verdict {
    let n = d.lines.iter().filter(|l| l.starts_with(BULLETS)).count();
    let r = fraction(n, d.lines.len());
    Verdict::keep_if(r <= c.max_bullet_lines, r)
}

pub fn ellipsis_lines(d: &DocView, c: &HeuristicsConfig) -> Verdict {
    let n = d
        .lines
        .iter()
        .filter(|l| l.ends_with("...") || l.ends_with('…'))
        .count();
    let r = fraction(n, d.lines.len());
    Verdict::keep_if(r <= c.max_ellipsis_lines, r)
}

pub fn non_alpha_words(d: &DocView, c: &HeuristicsConfig) -> Verdict {
    let n = d
        .words
        .iter()
        .filter(|w| !w.chars().any(char::is_alphabetic))
        .count();
    let r = fraction(n, d.words.len());
    Verdict::keep_if(r <= c.max_non_alpha_words, r)
}

pub fn stop_words(d: &DocView, c: &HeuristicsConfig) -> Verdict {
    let mut n = 0;
    for w in &d.words {
        let w = trim_punct(w);
        if w.len() <= 4 && STOP_WORDS.iter().any(|s| s.eq_ignore_ascii_case(w)) {
            n += 1;
            if n >= c.min_stop_words {
                return Verdict::Keep;
            }
        }
    }
    Verdict::keep_if(n >= c.min_stop_words, n as f64)
}

/// The first enabled document rule (then repetition rule) that drops `d`, with its value.
pub fn first_failing(d: &DocView, c: &HeuristicsConfig) -> Option<(&'static str, f64)> {
    for rule in &DOC_RULES {
        if c.is_enabled(rule.id) {
            if let Verdict::Drop(v) = (rule.check)(d, c) {
                return Some((rule.id, v));
            }
        }
    }
    repetition::first_failing(d.text, &d.lines, &d.words, &c.repetition, |id| {
        c.is_enabled(id)
    })
}
