//! `syllabus curate`: every heuristic rule on documents that pass and fail it, MinHash accuracy,
//! near-dup recall/precision on a planted corpus, Bloom false-positive rate, the classifier
//! round trip, mixing, output shards, resume, and config errors.

use std::path::Path;

use syllabus::curate::bloom::BloomFilter;
use syllabus::curate::config::{CurateConfig, OutputFormat};
use syllabus::curate::heuristics::{first_failing, DocView, HeuristicsConfig};
use syllabus::curate::lines::{edit, LineConfig};
use syllabus::curate::minhash::{estimate_jaccard, MinHasher};
use syllabus::curate::output::read_shard;
use syllabus::curate::quality::{self, QualityModel, TrainOptions};
use syllabus::curate::{curate, RunOptions, PROGRESS_FILE};
use syllabus::rng::Rng;

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

fn write_jsonl(path: &Path, docs: &[(String, &str)]) {
    let lines: Vec<String> = docs
        .iter()
        .map(|(t, s)| serde_json::json!({"text": t, "source": s}).to_string())
        .collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

fn config(inputs: &[&Path], out: &Path, stages: &str) -> CurateConfig {
    let inputs: Vec<String> = inputs
        .iter()
        .map(|p| format!("{:?}", p.display().to_string()))
        .collect();
    let text = format!(
        "inputs = [{}]\nseed = 7\n[output]\ndir = {:?}\nformat = \"jsonl.zst\"\n{stages}",
        inputs.join(", "),
        out.display().to_string()
    );
    CurateConfig::parse(&text, "test.toml").unwrap()
}

fn output_texts(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut shards: Vec<_> = std::fs::read_dir(dir.join("shards"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    shards.sort();
    for s in shards {
        assert!(s.to_string_lossy().ends_with(".jsonl.zst"));
        read_shard(&s, |l| {
            out.push((l.text.into_owned(), l.source.into_owned()));
            Ok(())
        })
        .unwrap();
    }
    out
}

/// 200 random-word documents of 150 words, then 50 copies of earlier ones with 2 words changed.
fn planted_corpus(rng: &mut Rng) -> (Vec<String>, usize) {
    let vocab: Vec<String> = (0..3000)
        .map(|i| format!("w{i}x{}", rng.below(1000)))
        .collect();
    let mut docs: Vec<String> = (0..200)
        .map(|_| {
            (0..150)
                .map(|_| vocab[rng.below(3000) as usize].as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    for k in 0..50 {
        let mut words: Vec<String> = docs[k * 3].split(' ').map(String::from).collect();
        for _ in 0..2 {
            let at = rng.below(150) as usize;
            words[at] = format!("edit{}", rng.below(1 << 30));
        }
        docs.push(words.join(" "));
    }
    (docs, 200)
}

#[test]
fn planted_near_duplicates_are_found_and_distinct_documents_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (docs, originals) = planted_corpus(&mut Rng::new(11));
    let input = dir.path().join("in.jsonl");
    write_jsonl(
        &input,
        &docs.iter().map(|d| (d.clone(), "web")).collect::<Vec<_>>(),
    );
    let cfg = config(&[&input], &dir.path().join("out"), "[minhash]\n");
    let report = curate(&cfg, RunOptions::default()).unwrap();
    let kept: std::collections::HashSet<String> = output_texts(&cfg.output.dir)
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    let dups_removed = docs[originals..]
        .iter()
        .filter(|d| !kept.contains(*d))
        .count();
    let originals_removed = docs[..originals]
        .iter()
        .filter(|d| !kept.contains(*d))
        .count();
    let recall = dups_removed as f64 / (docs.len() - originals) as f64;
    let precision = dups_removed as f64 / (dups_removed + originals_removed).max(1) as f64;
    println!("near-dup: recall {recall:.3} ({dups_removed}/50), precision {precision:.3}");
    assert!(recall >= 0.9 && precision >= 0.95);
    assert_eq!(
        report.rules["minhash_dup"].dropped.docs as usize,
        dups_removed + originals_removed
    );
}

#[test]
fn exact_dedup_heuristics_and_mixing_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let c = clean();
    let docs = vec![
        (c.clone(), "wiki"),
        (c.to_uppercase().to_lowercase().replace('.', " ."), "web"), // exact dup after normalisation
        ("too short".to_string(), "web"),
        (format!("{c} Another ending."), "web"),
    ];
    write_jsonl(&input, &docs);
    let stages = "[exact]\n[heuristics]\n[mix]\nweights = { wiki = 2.0, web = 0.0 }\n";
    let cfg = config(&[&input], &dir.path().join("out"), stages);
    let report = curate(&cfg, RunOptions::default()).unwrap();
    let out = output_texts(&cfg.output.dir);
    assert_eq!(
        out,
        vec![(c.clone(), "wiki".into()), (c.clone(), "wiki".into())]
    );
    assert_eq!(report.rules["exact_dup"].dropped.docs, 1);
    assert_eq!(report.rules["page_words"].dropped.docs, 1);
    assert_eq!(report.rules["mix_drop"].dropped.docs, 1);
    assert_eq!(report.output.docs, 2);
    assert!(cfg.output.dir.join("curate.md").is_file());
    // A second run refuses the existing output unless --overwrite.
    assert!(curate(&cfg, RunOptions::default()).is_err());
    let again = curate(
        &cfg,
        RunOptions {
            overwrite: true,
            resume: false,
        },
    )
    .unwrap();
    assert_eq!(again.output, report.output);
}

#[test]
fn resume_skips_finished_files_and_matches_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let (docs, _) = planted_corpus(&mut Rng::new(5));
    let paths: Vec<_> = (0..3)
        .map(|i| dir.path().join(format!("in{i}.jsonl")))
        .collect();
    for (i, p) in paths.iter().enumerate() {
        let part: Vec<_> = docs
            .iter()
            .skip(i)
            .step_by(3)
            .map(|d| (d.clone(), "web"))
            .collect();
        write_jsonl(p, &part);
    }
    let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
    let cfg = config(
        &refs,
        &dir.path().join("out"),
        "[exact]\n[minhash]\n[bloom]\nexpected_ngrams = 100000\n",
    );
    let full = curate(&cfg, RunOptions::default()).unwrap();
    let full_out = output_texts(&cfg.output.dir);
    // An interrupted run: the last file ends in a malformed line, so the run stops there
    // after finishing the first two files.
    let good = std::fs::read_to_string(&paths[2]).unwrap();
    std::fs::write(&paths[2], format!("{good}{{\"text\": broken\n")).unwrap();
    let overwrite = RunOptions {
        overwrite: true,
        resume: false,
    };
    assert!(curate(&cfg, overwrite).is_err());
    let progress: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cfg.output.dir.join(PROGRESS_FILE)).unwrap())
            .unwrap();
    assert_eq!(progress["done"].as_array().map(Vec::len), Some(2));
    std::fs::write(&paths[2], good).unwrap();
    let resumed = curate(
        &cfg,
        RunOptions {
            overwrite: false,
            resume: true,
        },
    )
    .unwrap();
    // Same shards and the same counts: the replay rebuilt the dedup state exactly.
    assert_eq!(output_texts(&cfg.output.dir), full_out);
    assert_eq!(resumed.output, full.output);
    for (rule, r) in &full.rules {
        assert_eq!(resumed.rules[rule].dropped, r.dropped, "{rule}");
    }
    assert!(full.rules.contains_key("minhash_dup"));
}

#[test]
fn classifier_round_trip_through_a_bin_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(1);
    let pick = |rng: &mut Rng, words: &[&str]| {
        (0..20)
            .map(|_| words[rng.below(words.len() as u64) as usize])
            .collect::<Vec<_>>()
            .join(" ")
    };
    let good = [
        "theorem",
        "proof",
        "lemma",
        "equation",
        "experiment",
        "hypothesis",
        "analysis",
        "evidence",
    ];
    let bad = [
        "buy", "cheap", "click", "free", "offer", "discount", "casino", "winner",
    ];
    let pos: Vec<String> = (0..200).map(|_| pick(&mut rng, &good)).collect();
    let neg: Vec<String> = (0..200).map(|_| pick(&mut rng, &bad)).collect();
    let out = dir.path().join("model.bin");
    let opts = TrainOptions {
        epoch: 10,
        bucket: 10_000,
        ..TrainOptions::default()
    };
    let trained = quality::train(&pos, &neg, &opts, &out).unwrap();
    let model = QualityModel::load(&out, "__label__hq").unwrap();
    let good_text = "a proof of the lemma by analysis";
    let (p, n) = (
        model.score(good_text),
        model.score("click for a free discount offer"),
    );
    println!("classifier: P(hq | good) = {p:.3}, P(hq | spam) = {n:.3}");
    assert!(p > 0.9 && n < 0.1);
    // The loaded .bin predicts exactly what the trained model does.
    let before = trained.predict(good_text, 2, 0.0);
    let hq = before
        .iter()
        .find(|p| p.label == "__label__hq")
        .map(|p| f64::from(p.prob));
    assert_eq!(hq, Some(p));
    assert!(QualityModel::load(&out, "__label__missing").is_err());

    // In the pipeline: threshold and top-fraction modes.
    let input = dir.path().join("mixed.jsonl");
    let docs: Vec<(String, &str)> = pos
        .iter()
        .take(10)
        .chain(neg.iter().take(10))
        .map(|t| (t.clone(), "web"))
        .collect();
    write_jsonl(&input, &docs);
    for (key, kept) in [("threshold = 0.5", 10), ("keep_fraction = 0.25", 5)] {
        let stages = format!(
            "[quality]\nmodel = {:?}\n{key}\n",
            out.display().to_string()
        );
        let cfg = config(&[&input], &dir.path().join(format!("out{kept}")), &stages);
        curate(&cfg, RunOptions::default()).unwrap();
        let texts = output_texts(&cfg.output.dir);
        assert_eq!(texts.len(), kept);
        assert!(texts.iter().all(|(t, _)| pos.contains(t)));
    }
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
