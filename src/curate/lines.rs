//! Line-level modifiers of DCLM-Baseline's RefinedWeb reproduction (Li et al. 2024, appendix;
//! Penedo et al. 2023, §G.2): lines are removed by the first matching rule, blank lines are
//! kept (they separate paragraphs), and the document is dropped (`line_removal_frac`) when more
//! than `max_removed_word_frac` of its words went with removed lines.
//!
//! - `uppercase_line`: more than `max_uppercase` of the line's characters are uppercase;
//! - `numeric_line`: the line holds digits and only punctuation/whitespace besides;
//! - `counter_line`: `<number> <counter word>` such as "12 likes", "1.2K views", "3,400
//!   followers" (the counter words are [`COUNTER_WORDS`]);
//! - `short_line`: fewer than `min_line_words` words;
//! - `boilerplate_line`: at most `boilerplate_max_words` words and contains (case-insensitive,
//!   starting at a word boundary) one of `boilerplate` (the length cap keeps a long paragraph
//!   that mentions cookies).

use serde::{Deserialize, Serialize};

use super::checks::check_range;

pub const RULE_IDS: [&str; 6] = [
    "uppercase_line",
    "numeric_line",
    "counter_line",
    "short_line",
    "boilerplate_line",
    "line_removal_frac",
];

pub const COUNTER_WORDS: [&str; 12] = [
    "likes",
    "shares",
    "comments",
    "retweets",
    "reposts",
    "quotes",
    "bookmarks",
    "upvotes",
    "downvotes",
    "downloads",
    "views",
    "followers",
];

/// The default boilerplate phrases (lowercase).
pub const BOILERPLATE: [&str; 13] = [
    "items in cart",
    "add to cart",
    "read more",
    "sign in",
    "sign up",
    "log in",
    "cookie",
    "terms of use",
    "terms of service",
    "privacy policy",
    "all rights reserved",
    "enable javascript",
    "skip to content",
];

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineConfig {
    /// `uppercase_line`: uppercase characters per character, above which a line goes.
    /// Default 0.5.
    #[serde(default = "d_upper")]
    pub max_uppercase: f64,
    /// `short_line`: words a line needs. Default 2.
    #[serde(default = "d_min_line_words")]
    pub min_line_words: usize,
    /// `boilerplate_line` phrases (lowercase). Default [`BOILERPLATE`].
    #[serde(default = "d_boilerplate")]
    pub boilerplate: Vec<String>,
    /// `boilerplate_line` applies to lines of at most this many words. Default 10.
    #[serde(default = "d_boiler_words")]
    pub boilerplate_max_words: usize,
    /// `line_removal_frac`: fraction of words removed by the line rules, above which the
    /// document is dropped. Default 0.05.
    #[serde(default = "d_removed")]
    pub max_removed_word_frac: f64,
}

fn d_upper() -> f64 {
    0.5
}
fn d_min_line_words() -> usize {
    2
}
fn d_boilerplate() -> Vec<String> {
    BOILERPLATE.iter().map(|s| s.to_string()).collect()
}
fn d_boiler_words() -> usize {
    10
}
fn d_removed() -> f64 {
    0.05
}

impl Default for LineConfig {
    fn default() -> Self {
        toml::from_str("").unwrap_or_else(|_| unreachable!("every field has a default"))
    }
}

impl LineConfig {
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        check_range(
            "heuristics.lines.max_uppercase",
            self.max_uppercase,
            0.0,
            1.0,
            false,
            &mut p,
        );
        check_range(
            "heuristics.lines.max_removed_word_frac",
            self.max_removed_word_frac,
            0.0,
            1.0,
            false,
            &mut p,
        );
        if self.boilerplate.iter().any(|b| b.trim().is_empty()) {
            p.push("heuristics.lines.boilerplate holds an empty phrase".into());
        }
        p
    }
}

fn is_uppercase_line(line: &str, c: &LineConfig) -> bool {
    let total = line.chars().count();
    let upper = line.chars().filter(|ch| ch.is_uppercase()).count();
    total > 0 && upper as f64 / total as f64 > c.max_uppercase
}

fn is_numeric_line(line: &str) -> bool {
    line.chars().any(|ch| ch.is_numeric())
        && line
            .chars()
            .all(|ch| ch.is_numeric() || !ch.is_alphanumeric())
}

/// "12", "1,234", "1.2K", "3M": digits with `,`/`.` and an optional K/M/B suffix.
fn is_count(word: &str) -> bool {
    let w = word.trim_start_matches(|c: char| !c.is_alphanumeric());
    let w = w.strip_suffix(['k', 'K', 'm', 'M', 'b', 'B']).unwrap_or(w);
    w.starts_with(|c: char| c.is_ascii_digit())
        && w.chars()
            .all(|c| c.is_ascii_digit() || c == ',' || c == '.')
}

fn is_counter_line(words: &[&str]) -> bool {
    match words {
        [count, what] => {
            let what = what
                .trim_end_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase();
            is_count(count)
                && COUNTER_WORDS
                    .iter()
                    .any(|cw| *cw == what || cw.strip_suffix('s') == Some(what.as_str()))
        }
        _ => false,
    }
}

fn is_boilerplate(line: &str, words: usize, c: &LineConfig) -> bool {
    if words > c.boilerplate_max_words {
        return false;
    }
    let lower = line.to_lowercase();
    c.boilerplate.iter().any(|b| starts_a_word(&lower, b))
}

/// Whether `phrase` occurs in `text` starting at a word boundary ("sign in" matches "please
/// sign in" and "sign into", not "design in").
fn starts_a_word(text: &str, phrase: &str) -> bool {
    text.match_indices(phrase).any(|(i, _)| {
        !text[..i]
            .chars()
            .next_back()
            .is_some_and(char::is_alphanumeric)
    })
}

/// The line rule that removes `line` (non-blank, trimmed), if any.
pub fn removing_rule(
    line: &str,
    c: &LineConfig,
    enabled: &impl Fn(&str) -> bool,
) -> Option<&'static str> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let checks = [
        is_uppercase_line(line, c),
        is_numeric_line(line),
        is_counter_line(&words),
        words.len() < c.min_line_words,
        is_boilerplate(line, words.len(), c),
    ];
    checks
        .iter()
        .zip(RULE_IDS)
        .find(|(hit, id)| **hit && enabled(id))
        .map(|(_, id)| id)
}

/// Lines removed by one rule.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Removed {
    pub words: u64,
    pub bytes: u64,
    /// The first removed line.
    pub example: String,
}

/// The outcome of the line modifiers on one document.
pub struct LineEdit {
    /// The text without the removed lines (`None`: nothing removed).
    pub text: Option<String>,
    /// Per rule id, what it removed (rules that removed nothing are absent).
    pub removed: Vec<(&'static str, Removed)>,
    pub removed_words: u64,
}

/// Applies the line rules to `text`.
pub fn edit(text: &str, c: &LineConfig, enabled: impl Fn(&str) -> bool) -> LineEdit {
    let mut kept = String::with_capacity(text.len());
    let mut removed: Vec<(&'static str, Removed)> = Vec::new();
    let mut removed_words = 0u64;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        let rule = match trimmed.is_empty() {
            true => None,
            false => removing_rule(trimmed, c, &enabled),
        };
        let Some(rule) = rule else {
            kept.push_str(line);
            continue;
        };
        let words = trimmed.split_whitespace().count() as u64;
        removed_words += words;
        let slot = match removed.iter().position(|(id, _)| *id == rule) {
            Some(i) => &mut removed[i].1,
            None => {
                removed.push((rule, Removed::default()));
                let last = removed.len() - 1;
                removed[last].1.example = trimmed.to_string();
                &mut removed[last].1
            }
        };
        slot.words += words;
        slot.bytes += line.len() as u64;
    }
    LineEdit {
        text: (!removed.is_empty()).then_some(kept),
        removed,
        removed_words,
    }
}
