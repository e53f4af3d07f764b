//! `syllabus curate` end to end: near-dup recall/precision on a planted corpus, exact dedup,
//! heuristics and mixing in one run, output shards, overwrite refusal, resume, and the
//! classifier round trip through a `.bin` in both quality modes.

use std::path::Path;

use syllabus::curate::config::CurateConfig;
use syllabus::curate::output::read_shard;
use syllabus::curate::quality::{self, QualityModel, TrainOptions};
use syllabus::curate::{curate, RunOptions, PROGRESS_FILE};
use syllabus::rng::Rng;

/// A clean English paragraph that passes every default heuristic.
fn clean() -> String {
    "The history of the river valley is told through the records of farmers and traders. \
     Many of them settled near the water because the soil was rich and easy to work. \
     Over time the towns grew larger, and roads were built to connect them with the coast. \
     Scholars have studied these changes with maps, letters and the remains of old houses. \
     Their work shows that the valley was never isolated from the wider world around it."
        .to_string()
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
    // The .bin written holds the trained model: reloaded, it predicts exactly the same.
    let reloaded = fasttext::FastText::load_model(&out).unwrap();
    let probs = |m: &fasttext::FastText, text: &str| -> Vec<(String, f32)> {
        let preds = m.predict(text, 2, 0.0);
        preds.into_iter().map(|p| (p.label, p.prob)).collect()
    };
    for text in [good_text, "click for a free discount offer"] {
        assert_eq!(probs(&trained, text), probs(&reloaded, text));
    }
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

/// A classifier trained by the official (C++) fastText, `tests/data/fasttext-official.bin`
/// (made by `scripts/fasttext_fixture.py`): the Rust reader loads the C++ `.bin` format and
/// predicts what fastText itself predicted, so a published classifier such as DCLM's can be
/// given as `quality.model`.
#[test]
fn a_classifier_trained_by_official_fasttext_loads_and_agrees() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let model = QualityModel::load(&data.join("fasttext-official.bin"), "__label__hq")
        .expect("the official fastText .bin loads");
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(data.join("fasttext-official.json")).expect("fixture"),
    )
    .expect("fixture JSON");
    let probes = meta["probes"].as_array().expect("probes");
    assert!(probes.len() >= 5);
    let mut worst = 0.0f64;
    for probe in probes {
        let text = probe["text"].as_str().expect("text");
        let want = probe["p_hq"].as_f64().expect("p_hq");
        let got = model.score(text);
        println!("{text:?}: fastText {want:.6}, ours {got:.6}");
        worst = worst.max((got - want).abs());
    }
    println!("largest probability difference: {worst:.2e}");
    assert!(worst < 1e-6, "largest difference {worst}");
}
