//! Gopher's repetition filters (Rae et al. 2021, appendix A, table A1), which DCLM-Baseline
//! applies as "massive web repetition filters". Lines are the non-blank lines; paragraphs are
//! separated by blank lines; words are whitespace-separated and lowercased; "characters" are
//! those of the words (whitespace not counted).
//!
//! - `dup_line_frac` / `dup_para_frac`: lines (paragraphs) equal to an earlier one, as a
//!   fraction of all lines (paragraphs);
//! - `dup_line_char_frac` / `dup_para_char_frac`: the characters of those repeats as a fraction
//!   of all characters;
//! - `top_{2,3,4}gram`: characters covered by the most frequent n-gram (counting every
//!   occurrence, if it occurs more than once) as a fraction of all word characters;
//! - `dup_{5..10}gram`: characters of words covered by a repeated occurrence of some n-gram
//!   (each word counted once) as a fraction of all word characters.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::checks::check_range;
use super::normalize::{hash64, mix64};

pub const RULE_IDS: [&str; 13] = [
    "dup_line_frac",
    "dup_para_frac",
    "dup_line_char_frac",
    "dup_para_char_frac",
    "top_2gram",
    "top_3gram",
    "top_4gram",
    "dup_5gram",
    "dup_6gram",
    "dup_7gram",
    "dup_8gram",
    "dup_9gram",
    "dup_10gram",
];

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepetitionConfig {
    /// Default 0.3.
    #[serde(default = "d_0_3")]
    pub max_dup_line_frac: f64,
    /// Default 0.3.
    #[serde(default = "d_0_3")]
    pub max_dup_para_frac: f64,
    /// Default 0.2.
    #[serde(default = "d_0_2")]
    pub max_dup_line_char_frac: f64,
    /// Default 0.2.
    #[serde(default = "d_0_2")]
    pub max_dup_para_char_frac: f64,
    /// For n = 2, 3, 4. Default [0.2, 0.18, 0.16].
    #[serde(default = "d_top")]
    pub max_top_ngram_char_frac: [f64; 3],
    /// For n = 5..=10. Default [0.15, 0.14, 0.13, 0.12, 0.11, 0.10].
    #[serde(default = "d_dup")]
    pub max_dup_ngram_char_frac: [f64; 6],
}

fn d_0_3() -> f64 {
    0.3
}
fn d_0_2() -> f64 {
    0.2
}
fn d_top() -> [f64; 3] {
    [0.2, 0.18, 0.16]
}
fn d_dup() -> [f64; 6] {
    [0.15, 0.14, 0.13, 0.12, 0.11, 0.10]
}

impl Default for RepetitionConfig {
    fn default() -> Self {
        toml::from_str("").unwrap_or_else(|_| unreachable!("every field has a default"))
    }
}

impl RepetitionConfig {
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let singles = [
            self.max_dup_line_frac,
            self.max_dup_para_frac,
            self.max_dup_line_char_frac,
            self.max_dup_para_char_frac,
        ];
        let all = singles
            .iter()
            .chain(&self.max_top_ngram_char_frac)
            .chain(&self.max_dup_ngram_char_frac);
        for (id, &v) in RULE_IDS.iter().zip(all) {
            check_range(
                &format!("heuristics.repetition ({id})"),
                v,
                0.0,
                1.0,
                false,
                &mut p,
            );
        }
        p
    }

    fn thresholds(&self) -> impl Iterator<Item = f64> + '_ {
        [
            self.max_dup_line_frac,
            self.max_dup_para_frac,
            self.max_dup_line_char_frac,
            self.max_dup_para_char_frac,
        ]
        .into_iter()
        .chain(self.max_top_ngram_char_frac)
        .chain(self.max_dup_ngram_char_frac)
    }
}

/// (fraction of items repeated, fraction of their characters).
pub fn duplicate_fractions<'a>(items: impl Iterator<Item = &'a str>) -> (f64, f64) {
    let mut seen = HashSet::new();
    let (mut n, mut dup, mut chars, mut dup_chars) = (0usize, 0usize, 0usize, 0usize);
    for item in items {
        let len = item.chars().filter(|c| !c.is_whitespace()).count();
        n += 1;
        chars += len;
        if !seen.insert(item) {
            dup += 1;
            dup_chars += len;
        }
    }
    let f = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    (f(dup, n), f(dup_chars, chars))
}

/// Lowercased words with their character counts and hashes.
struct Words {
    lens: Vec<usize>,
    hashes: Vec<u64>,
    total_chars: usize,
}

impl Words {
    fn new(words: &[&str]) -> Words {
        let lower: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
        let lens: Vec<usize> = lower.iter().map(|w| w.chars().count()).collect();
        let hashes = lower.iter().map(|w| hash64(w.as_bytes(), 0)).collect();
        let total_chars = lens.iter().sum();
        Words {
            lens,
            hashes,
            total_chars,
        }
    }

    fn ngram_keys(&self, n: usize) -> impl Iterator<Item = u64> + '_ {
        self.hashes.windows(n).map(move |w| {
            w.iter()
                .fold(n as u64, |a, &h| mix64(a.rotate_left(17) ^ h))
        })
    }

    fn frac(&self, chars: usize) -> f64 {
        if self.total_chars == 0 {
            0.0
        } else {
            chars as f64 / self.total_chars as f64
        }
    }

    /// Characters covered by the most frequent n-gram, if it occurs more than once.
    fn top_ngram_frac(&self, n: usize) -> f64 {
        let mut counts: HashMap<u64, (usize, usize)> = HashMap::new();
        for (i, key) in self.ngram_keys(n).enumerate() {
            counts.entry(key).or_insert((0, i)).0 += 1;
        }
        // Most frequent; ties go to the earliest n-gram (deterministic).
        let best = counts
            .values()
            .filter(|(count, _)| *count > 1)
            .max_by_key(|(count, first)| (*count, std::cmp::Reverse(*first)));
        best.map_or(0.0, |&(count, first)| {
            self.frac(count * self.lens[first..first + n].iter().sum::<usize>())
        })
    }

    /// Characters of words inside a repeated (not first) occurrence of some n-gram.
    fn dup_ngram_frac(&self, n: usize) -> f64 {
        let mut seen = HashSet::new();
        let mut covered = vec![false; self.lens.len()];
        for (i, key) in self.ngram_keys(n).enumerate() {
            if !seen.insert(key) {
                covered[i..i + n].iter_mut().for_each(|c| *c = true);
            }
        }
        let chars = covered
            .iter()
            .zip(&self.lens)
            .filter(|(c, _)| **c)
            .map(|(_, l)| l)
            .sum();
        self.frac(chars)
    }
}

/// The first enabled repetition rule that fails on a text (with its non-blank trimmed `lines`
/// and whitespace `words`), with its measured value.
pub fn first_failing(
    text: &str,
    lines: &[&str],
    words: &[&str],
    c: &RepetitionConfig,
    enabled: impl Fn(&str) -> bool,
) -> Option<(&'static str, f64)> {
    let (line_frac, line_chars) = duplicate_fractions(lines.iter().copied());
    let paragraphs = text.split("\n\n").map(str::trim).filter(|p| !p.is_empty());
    let (para_frac, para_chars) = duplicate_fractions(paragraphs);
    let cheap = [line_frac, para_frac, line_chars, para_chars];
    let thresholds: Vec<f64> = c.thresholds().collect();
    for (i, v) in cheap.into_iter().enumerate() {
        if enabled(RULE_IDS[i]) && v > thresholds[i] {
            return Some((RULE_IDS[i], v));
        }
    }
    let words = Words::new(words);
    for i in 4..RULE_IDS.len() {
        if !enabled(RULE_IDS[i]) {
            continue;
        }
        let v = if i < 7 {
            words.top_ngram_frac(i - 2)
        } else {
            words.dup_ngram_frac(i - 2)
        };
        if v > thresholds[i] {
            return Some((RULE_IDS[i], v));
        }
    }
    None
}
