//! `syllabus curate`, the parts: every heuristic rule on documents that pass and fail it,
//! the line modifiers, MinHash accuracy, the Bloom filter's false-positive rate, and config
//! errors. End-to-end runs are in `curate_pipeline.rs`.

use syllabus::curate::bloom::BloomFilter;
use syllabus::curate::config::{CurateConfig, OutputFormat};
use syllabus::curate::heuristics::{first_failing, DocView, HeuristicsConfig};
use syllabus::curate::lines::{edit, LineConfig};
use syllabus::curate::minhash::{estimate_jaccard, MinHasher};

/// A clean ~90-word English paragraph that passes every default rule.
fn clean() -> String {
    let sentences = [
        "The history of the river valley is told through the records of farmers and traders.",
        "Many of them settled near the water because the soil was rich and easy to work.",
        "Over time the towns grew larger, and roads were built to connect them with the coast.",
        "Scholars have studied these changes with maps, letters and the remains of old houses.",
        "Their work shows that the valley was never isolated from the wider world around it.",
        "Trade brought new ideas, new crops and new people, and that shaped daily life there.",
    ];
    sentences.join(" ")
}

fn verdict(text: &str) -> Option<&'static str> {
    first_failing(&DocView::new(text), &HeuristicsConfig::default()).map(|(id, _)| id)
}

#[test]
fn the_clean_document_passes_every_rule() {
    assert_eq!(verdict(&clean()), None);
    let e = edit(&clean(), &LineConfig::default(), |_| true);
    assert_eq!(e.removed_words, 0);
}

#[test]
fn each_document_rule_fails_its_own_bad_document() {
    let c = clean();
    let few: String = c.split_whitespace().take(30).collect::<Vec<_>>().join(" ");
    let long_words =
        "Extraordinarily incomprehensibilities notwithstanding characteristically ".repeat(20);
    let symbols = format!("{c} {}", "#tag ".repeat(12));
    let bullets = (0..20)
        .map(|i| format!("- item number {i} of the list with the words"))
        .collect::<Vec<_>>()
        .join("\n");
    let ellipsis = c
        .split(". ")
        .map(|s| format!("{s}..."))
        .collect::<Vec<_>>()
        .join("\n");
    let numbers = format!("{c} {}", "12 34 56 78 ".repeat(8));
    let no_stop =
        "Rivers flow quickly downhill carrying sediment toward distant oceans. ".repeat(8);
    let cases = [
        (few.as_str(), "page_words"),
        (long_words.as_str(), "mean_word_length"),
        (symbols.as_str(), "symbol_ratio"),
        (bullets.as_str(), "bullet_lines"),
        (ellipsis.as_str(), "ellipsis_lines"),
        (numbers.as_str(), "non_alpha_words"),
        (no_stop.as_str(), "stop_words"),
    ];
    for (text, rule) in cases {
        assert_eq!(verdict(text), Some(rule), "{text:.80}");
    }
}

/// The rule `only` on `text`, every other rule disabled.
fn only_rule(text: &str, only: &str) -> Option<&'static str> {
    let disable = syllabus::curate::heuristics::all_rule_ids()
        .into_iter()
        .filter(|id| *id != only)
        .map(String::from)
        .collect();
    let cfg = HeuristicsConfig {
        disable,
        ..HeuristicsConfig::default()
    };
    first_failing(&DocView::new(text), &cfg).map(|(id, _)| id)
}

#[test]
fn each_repetition_rule_fails_its_own_bad_document() {
    let c = clean();
    let lines: Vec<&str> = c.split(". ").collect();
    let with = |sep: &str, extra: &[&str]| {
        let all: Vec<&str> = lines.iter().chain(extra).copied().collect();
        all.join(sep)
    };
    let phrase = "farmers and traders built roads near rich soil and water ";
    let cases = [
        ("dup_line_frac", with("\n", &lines[..3])),
        ("dup_para_frac", with("\n\n", &lines[..3])),
        ("dup_line_char_frac", with("\n", &lines[2..4])),
        ("dup_para_char_frac", with("\n\n", &lines[2..4])),
        ("top_2gram", format!("{c} {}", "of the ".repeat(30))),
        ("top_3gram", format!("{c} {}", "of the river ".repeat(15))),
        (
            "top_4gram",
            format!("{c} {}", "of the river valley ".repeat(12)),
        ),
    ];
    let dup_cases = (5..=10).map(|n| (format!("dup_{n}gram"), format!("{c} {}", phrase.repeat(3))));
    for (rule, text) in cases
        .into_iter()
        .map(|(r, t)| (r.to_string(), t))
        .chain(dup_cases)
    {
        assert_eq!(only_rule(&text, &rule), Some(rule.as_str()), "{text:.100}");
        assert_eq!(only_rule(&c, &rule), None, "{rule} on the clean document");
    }
}

#[test]
fn line_modifiers_remove_their_lines_and_drop_heavily_edited_pages() {
    let c = clean();
    let text = format!("{c}\nTHIS IS ALL SHOUTING HERE\n12 345\n1.2K likes\nHello\nRead more\n{c}");
    let e = edit(&text, &LineConfig::default(), |_| true);
    let rules: Vec<&str> = e.removed.iter().map(|(r, _)| *r).collect();
    assert_eq!(
        rules,
        [
            "uppercase_line",
            "numeric_line",
            "counter_line",
            "short_line",
            "boilerplate_line"
        ]
    );
    let kept = e.text.unwrap_or_default();
    assert!(!kept.contains("SHOUTING") && kept.contains("farmers"));
    // 11 removed words of ~190: above 5%, so the pipeline drops the page.
    assert!(e.removed_words as f64 / text.split_whitespace().count() as f64 > 0.05);
    // A long line that mentions cookies is not boilerplate.
    let long = format!("{c} We baked a cookie and talked about the weather for a long while.");
    assert_eq!(
        edit(&long, &LineConfig::default(), |_| true).removed_words,
        0
    );
}

#[test]
fn minhash_estimates_jaccard_within_0_1_at_128_permutations() {
    let h = MinHasher::new(128, 5, 3);
    let n = 1000u64;
    for j in [0.2, 0.5, 0.8] {
        // A = [0, n), B = [s, s + n): J = (n - s) / (n + s).
        let s = (n as f64 * (1.0 - j) / (1.0 + j)).round() as u64;
        let truth = (n - s) as f64 / (n + s) as f64;
        let hashes = |r: std::ops::Range<u64>| {
            r.map(|x| x.wrapping_mul(0x9e37_79b9_7f4a_7c15))
                .collect::<Vec<_>>()
        };
        let a = h.signature_of(&hashes(0..n)).unwrap_or_default();
        let b = h.signature_of(&hashes(s..s + n)).unwrap_or_default();
        let est = estimate_jaccard(&a, &b);
        println!("J = {truth:.3}: estimate {est:.3}");
        assert!((est - truth).abs() <= 0.1, "J {truth}: estimate {est}");
    }
}

#[test]
fn bloom_false_positive_rate_is_near_its_target() {
    let mut f = BloomFilter::new(20_000, 0.01);
    for i in 0..20_000u64 {
        f.insert(syllabus::curate::normalize::mix64(i));
    }
    let probes = 200_000u64;
    let fp = (0..probes)
        .filter(|i| f.contains(syllabus::curate::normalize::mix64(1_000_000 + i)))
        .count() as f64
        / probes as f64;
    println!(
        "bloom: measured false-positive rate {fp:.4} (target 0.01), predicted {:.4}",
        f.current_fp_rate()
    );
    assert!((0.005..0.02).contains(&fp), "{fp}");
}

#[test]
fn a_bad_config_lists_every_problem() {
    let text = r#"
inputs = []
colour = "blue"
[output]
dir = "out"
format = "jsonl"
[minhash]
bands = 10
threshold = 1.5
[heuristics]
max_symbol_ratio = -1
disable = ["no_such_rule"]
[heuristics.lines]
shout = 1
[quality]
model = "m.bin"
"#;
    let err = CurateConfig::parse(text, "c.toml").unwrap_err().to_string();
    println!("{err}");
    for needle in [
        "unknown key `colour`",
        "unknown key `heuristics.lines.shout`",
        "inputs is empty",
        "minhash.bands * minhash.rows",
        "minhash.threshold",
        "heuristics.max_symbol_ratio",
        "no_such_rule",
        "exactly one of threshold and keep_fraction",
    ] {
        assert!(err.contains(needle), "{needle}: {err}");
    }
    let ok = CurateConfig::parse("inputs = [\"a\"]\n[output]\ndir = \"o\"\n", "c.toml").unwrap();
    assert_eq!(ok.output.format, OutputFormat::JsonlZst);
}

#[test]
fn the_example_config_parses() {
    let text = include_str!("../configs/curate.toml");
    let cfg = CurateConfig::parse(text, "configs/curate.toml").unwrap();
    assert!(cfg.minhash.is_some() && cfg.bloom.is_some() && cfg.quality.is_none());
}
