//! A crash-safety campaign against the `syllabus` binary, run as a hostile user would: kill -9
//! (inside the checkpoint writer and at random moments), corrupt files, feed bad input. It
//! prints one line per case and the counts; exit status 1 if any case went wrong.
//!
//! ```sh
//! cargo build --release && cargo run --release --example crash_campaign -- [--kills N] [--seed S]
//! ```
//!
//! Run from the repository root (it trains a 1-layer model on the embedded corpus, about a
//! second per run). Work files go to a temporary directory, removed at the end.
//!
//! - Kills: `SYLLABUS_FAULT` at every checkpoint-writer point and checkpoint, plus `--kills`
//!   SIGKILLs at seeded random times. Each run is resumed as the error messages say and must
//!   end bit-identical (weights, ledger records, sampler state, logged losses) to an
//!   uninterrupted run.
//! - Corruptions: one byte changed at the start, middle and end of each data, checkpoint,
//!   ledger and state file; the command that reads the file must fail and name it, and a
//!   refused resume must leave the run directory as it was.
//! - Bad input: config overrides and arguments that must fail with a message naming them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use candle_core::Device;
use syllabus::fsutil::fault::FAULT_ENV;
use syllabus::rng::Rng;
use syllabus::train::checkpoint;

mod damage;

const STEPS: u64 = 12;
const CHECKPOINTS: u64 = 4; // every 3 steps
const POINTS: [&str; 5] = [
    "checkpoint-model",
    "checkpoint-optimizer",
    "checkpoint-extra",
    "checkpoint-manifest",
    "checkpoint-renamed",
];

struct Campaign {
    bin: PathBuf,
    root: PathBuf,
    failures: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str, default: u64| -> anyhow::Result<u64> {
        match args.iter().position(|a| a == name) {
            Some(i) => Ok(args
                .get(i + 1)
                .map(|v| v.parse())
                .transpose()?
                .unwrap_or(default)),
            None => Ok(default),
        }
    };
    let (kills, seed) = (flag("--kills", 15)?, flag("--seed", 1)?);
    let exe = std::env::current_exe()?;
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("syllabus"));
    let bin = bin
        .filter(|b| b.is_file())
        .ok_or_else(|| anyhow::anyhow!("build the binary first: cargo build --release"))?;
    let tmp = tempfile::tempdir()?;
    let mut c = Campaign {
        bin,
        root: tmp.path().to_path_buf(),
        failures: Vec::new(),
    };
    let t0 = Instant::now();
    let reference = c.fresh_run("reference");
    c.train(&reference, &[], None).success_or("reference run")?;
    let expected = outcome(&reference.join("run"));
    // The random kills spread over a run's length, timed once the data is prepared.
    let timed = c.fresh_run("timed");
    let t1 = Instant::now();
    c.train(&timed, &[], None).success_or("timed run")?;
    let run_secs = t1.elapsed().as_secs_f64();

    let killed = c.kills(&expected, kills, seed, run_secs);
    let corrupted = c.corruptions();
    let bad = c.bad_inputs();
    println!(
        "\nkills: {killed}; corruptions: {corrupted}; bad inputs: {bad}; {} case(s) wrong; {:.0} s",
        c.failures.len(),
        t0.elapsed().as_secs_f64()
    );
    for f in &c.failures {
        println!("WRONG: {f}");
    }
    let wrong = !c.failures.is_empty();
    drop(tmp); // exit() below would skip removing the work files
    std::process::exit(i32::from(wrong));
}

trait Succeeds {
    fn success_or(self, what: &str) -> anyhow::Result<Output>;
}

impl Succeeds for Output {
    fn success_or(self, what: &str) -> anyhow::Result<Output> {
        anyhow::ensure!(self.status.success(), "{what}: {}", stderr(&self));
        Ok(self)
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

impl Campaign {
    /// A directory with the campaign config (data prepared once, shared by every run).
    fn fresh_run(&self, name: &str) -> PathBuf {
        let dir = self.root.join(name);
        let repo = std::env::current_dir().expect("cwd");
        let config = format!(
            r#"[run]
name = "c"
out_dir = "{run}"
seed = 3
[data]
prepared_dir = "{prep}"
inputs = ["{repo}/data/default/train.jsonl.gz"]
val_inputs = ["{repo}/data/default/val.jsonl.gz"]
[model]
vocab_size = 50257
n_positions = 32
n_layer = 1
n_head = 2
d_model = 32
[schedule]
warmup_steps = 2
[budget]
steps = {STEPS}
[train]
batch_size = 4
[eval]
every = 6
max_blocks = 8
tasks = ["val"]
ppl_max_tokens = 256
[checkpoint]
every = 3
keep_last = 2
[logging]
log_every = 2
[sampling]
policy = "lfr"
[sampling.lfr]
phases = [{{ kind = "learn", steps = 4 }}, {{ kind = "focus", steps = 4, drop_fraction = 0.5 }},
          {{ kind = "review", steps = 4 }}]
"#,
            run = dir.join("run").display(),
            prep = self.root.join("prepared").display(),
            repo = repo.display(),
        );
        std::fs::create_dir_all(&dir).expect("campaign dir");
        std::fs::write(dir.join("c.toml"), config).expect("config");
        dir
    }

    fn command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args).current_dir(dir).env_remove(FAULT_ENV);
        cmd
    }

    fn train(&self, dir: &Path, extra: &[&str], fault: Option<&str>) -> Output {
        let mut cmd = self.command(dir, &["train", "--config", "c.toml"]);
        cmd.args(extra);
        if let Some(f) = fault {
            cmd.env(FAULT_ENV, f);
        }
        cmd.output().expect("binary runs")
    }

    fn wrong(&mut self, case: &str, why: String) {
        println!("  WRONG {case}: {why}");
        self.failures.push(format!("{case}: {why}"));
    }

    /// Resumes a killed run the way its errors say (`--overwrite` when no checkpoint was
    /// complete yet) and compares the result with the uninterrupted run.
    fn resume_and_compare(&mut self, case: &str, dir: &Path, expected: &Outcome) -> bool {
        let mut out = self.train(dir, &["--resume"], None);
        if stderr(&out).contains("no complete checkpoint") {
            out = self.train(dir, &["--overwrite"], None);
        }
        if !out.status.success() {
            self.wrong(case, format!("resume failed: {}", stderr(&out)));
            return false;
        }
        let same = outcome(&dir.join("run")) == *expected;
        if !same {
            self.wrong(
                case,
                "the resumed run differs from the uninterrupted one".into(),
            );
        }
        same
    }

    fn kills(&mut self, expected: &Outcome, random: u64, seed: u64, run_secs: f64) -> String {
        let (mut cases, mut identical, mut finished_first) = (0, 0, 0);
        for point in POINTS {
            for hit in 1..=CHECKPOINTS {
                let case = format!("kill at {point}@{hit}");
                let dir = self.fresh_run(&format!("fault-{point}-{hit}"));
                let out = self.train(&dir, &[], Some(&format!("{point}@{hit}")));
                cases += 1;
                if out.status.success() {
                    self.wrong(&case, "the fault point was not reached".into());
                    continue;
                }
                identical += usize::from(self.resume_and_compare(&case, &dir, expected));
            }
        }
        let mut rng = Rng::new(seed);
        for k in 0..random {
            let delay = Duration::from_secs_f64(rng.next_f64() * run_secs);
            let case = format!("kill after {:.0} ms", delay.as_secs_f64() * 1e3);
            let dir = self.fresh_run(&format!("random-{k}"));
            let mut child = self.command(&dir, &["train", "--config", "c.toml"]);
            let mut child = child
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn");
            std::thread::sleep(delay);
            let ran_out = child.try_wait().expect("wait").is_some();
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
            cases += 1;
            finished_first += usize::from(ran_out);
            identical += usize::from(self.resume_and_compare(&case, &dir, expected));
        }
        println!("kills: {identical} of {cases} resumed bit-identical");
        format!(
            "{identical}/{cases} bit-identical ({} in the checkpoint writer, {finished_first} \
             random kills came after the run ended)",
            POINTS.len() as u64 * CHECKPOINTS
        )
    }
}

/// Everything a resumed run must reproduce exactly.
#[derive(Debug, PartialEq)]
struct Outcome {
    weights: BTreeMap<String, Vec<u32>>,
    ledger_records: Vec<u8>,
    cursor: serde_json::Value,
    losses: Vec<(u64, String)>,
}

fn outcome(run: &Path) -> Outcome {
    let ckpt = checkpoint::latest(run)
        .ok()
        .flatten()
        .expect("a checkpoint");
    let models = syllabus::model::ModelRegistry::builtin();
    let ckpt = checkpoint::load(&ckpt, &models, &Device::Cpu).expect("loads");
    let weights = ckpt
        .params
        .to_tensors()
        .into_iter()
        .map(|(k, t)| {
            let v = t
                .flatten_all()
                .and_then(|t| t.to_vec1::<f32>())
                .expect("f32");
            (k, v.into_iter().map(f32::to_bits).collect())
        })
        .collect();
    let ledger = std::fs::read(run.join("ledger.bin")).expect("ledger");
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap_or_default();
    let losses = metrics
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["tag"] == "train/loss")
        .map(|v| {
            (
                v["step"].as_u64().unwrap_or(u64::MAX),
                v["value"].to_string(),
            )
        })
        .collect();
    Outcome {
        weights,
        // Runs in different directories have different run ids in the ledger header.
        ledger_records: ledger.get(64..).unwrap_or_default().to_vec(),
        cursor: ckpt.manifest.state.data_cursor,
        losses,
    }
}
