//! The corruption and bad-input parts of the campaign.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use super::{stderr, Campaign};

/// What reads a damaged file, and so must notice the damage.
#[derive(Clone, Copy)]
enum Reader {
    /// `syllabus verify` on the prepared-data directory.
    Verify,
    /// `syllabus train --resume`: must fail naming the file and leave the run as it was.
    Resume,
    /// `syllabus ledger` on the run.
    LedgerReport,
    /// `syllabus train --resume` must succeed and rewrite the file (derived state).
    ResumeRepairs,
}

impl Campaign {
    /// One changed byte at the start, middle and end of each file; returns the summary.
    pub(super) fn corruptions(&mut self) -> String {
        let dir = self.fresh_run("damaged");
        let out = self.train(&dir, &["--stop-after", "6"], None);
        assert!(out.status.success(), "setup: {}", stderr(&out));
        let prep = self.root.join("prepared");
        let run = dir.join("run");
        let ckpt = run.join("checkpoints/step_00000006");
        let files: Vec<(PathBuf, Reader)> = [
            (prep.join("train.bin"), Reader::Verify),
            (prep.join("val.bin"), Reader::Verify),
            (prep.join("train.docs"), Reader::Verify),
            (prep.join("val.docs"), Reader::Verify),
            (prep.join("manifest.json"), Reader::Verify),
            (ckpt.join("model.safetensors"), Reader::Resume),
            (ckpt.join("optimizer.safetensors"), Reader::Resume),
            (ckpt.join("ledger.bin"), Reader::Resume),
            (ckpt.join("manifest.json"), Reader::Resume),
            (run.join("config.toml"), Reader::Resume),
            (run.join("ledger.bin"), Reader::LedgerReport),
            (run.join("budget.json"), Reader::ResumeRepairs),
        ]
        .into();
        let (mut cases, mut caught) = (0, 0);
        for (path, reader) in files {
            let original = std::fs::read(&path).expect("file to damage");
            for at in [0, original.len() / 2, original.len() - 1] {
                let mut bytes = original.clone();
                bytes[at] = damaged(bytes[at]);
                std::fs::write(&path, &bytes).expect("write");
                let case = format!(
                    "{} byte {at}",
                    path.strip_prefix(&self.root).unwrap_or(&path).display()
                );
                cases += 1;
                match self.check(&dir, &path, reader) {
                    Ok(()) => caught += 1,
                    Err(why) => self.wrong(&case, why),
                }
                std::fs::write(&path, &original).expect("restore");
            }
        }
        println!("corruptions: {caught} of {cases} detected (or repaired, for derived state)");
        format!("{caught}/{cases} detected or repaired")
    }

    fn check(&self, dir: &Path, path: &Path, reader: Reader) -> Result<(), String> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let names_file = |o: &Output| {
            // `verify` lists each file's verdict on stdout.
            let err = stderr(o) + &String::from_utf8_lossy(&o.stdout);
            match (
                o.status.success(),
                err.contains(name),
                err.contains("panicked"),
            ) {
                (false, true, false) => Ok(()),
                _ => Err(format!("exit {:?}: {err}", o.status.code())),
            }
        };
        let run = dir.join("run");
        match reader {
            Reader::Verify => names_file(
                &self
                    .command(dir, &["verify", "../prepared"])
                    .output()
                    .expect("runs"),
            ),
            Reader::LedgerReport => names_file(
                &self
                    .command(dir, &["ledger", "run"])
                    .output()
                    .expect("runs"),
            ),
            Reader::Resume => {
                let before = contents(&run);
                names_file(&self.train(dir, &["--resume", "--stop-after", "7"], None))?;
                (contents(&run) == before)
                    .then_some(())
                    .ok_or_else(|| "a refused resume changed the run directory".to_string())
            }
            Reader::ResumeRepairs => {
                let out = self.train(dir, &["--resume", "--stop-after", "7"], None);
                let repaired = std::fs::read(path).ok();
                // Drop the new checkpoint so the next case resumes from step 6 again.
                let reset = std::fs::remove_dir_all(run.join("checkpoints/step_00000007"));
                match (out.status.success(), repaired, reset.is_ok()) {
                    (true, Some(bytes), true)
                        if serde_json::from_slice::<serde_json::Value>(&bytes).is_ok() =>
                    {
                        Ok(())
                    }
                    _ => Err(format!("not repaired: {}", stderr(&out))),
                }
            }
        }
    }

    /// `--set` overrides and arguments that must fail with a message naming what is wrong.
    pub(super) fn bad_inputs(&mut self) -> String {
        let dir = self.fresh_run("bad-input");
        let sets = [
            ("run.threads=100000", "run.threads"),
            ("run.threads=-1", "run.threads"),
            ("run.out_dir=", "run.out_dir"),
            ("run.device=\"tpu\"", "tpu"),
            ("data.prepared_dir=", "data.prepared_dir"),
            ("data.val_fraction=1.5", "val_fraction"),
            ("model.n_layer=0", "n_layer"),
            ("model.n_layer=-1", "n_layer"),
            ("model.n_head=3", "n_head"),
            ("model.d_model=0", "d_model"),
            ("model.n_positions=0", "n_positions"),
            ("model.vocab_size=0", "vocab_size"),
            ("model.preset=\"huge\"", "huge"),
            ("model.colour=1", "colour"),
            ("optim.lr=-1", "optim.lr"),
            ("optim.lr=nan", "optim.lr"),
            ("optim.lr=\"fast\"", "optim.lr"),
            ("optim.weight_decay=-1", "weight_decay"),
            ("optim.grad_clip=-1", "grad_clip"),
            ("schedule.warmup_steps=100", "warmup_steps"),
            ("schedule.kind=\"sawtooth\"", "sawtooth"),
            ("schedule.min_lr_ratio=2", "min_lr_ratio"),
            ("budget.steps=0", "budget"),
            ("budget.tokens=5", "budget"),
            ("train.batch_size=0", "batch_size"),
            ("train.batch_size=100000000", "batch_size"),
            ("train.grad_accum=0", "grad_accum"),
            ("train.precision=\"fp8\"", "fp8"),
            ("eval.batch_size=0", "eval.batch_size"),
            ("eval.tasks=[\"nope\"]", "nope"),
            ("checkpoint.keep_last=0", "keep_last"),
            ("logging.log_every=0", "log_every"),
            ("sampling.policy=\"nope\"", "nope"),
            ("sampling.lfr.repeat_last=-2", "sampling.lfr"),
            ("extra.key=1", "extra"),
        ];
        let mut cases: Vec<(Vec<String>, &str)> = sets
            .iter()
            .map(|(set, needle)| {
                (
                    vec![
                        "train".into(),
                        "--config".into(),
                        "c.toml".into(),
                        "--set".into(),
                        set.to_string(),
                    ],
                    *needle,
                )
            })
            .collect();
        let args: [(&str, &str); 10] = [
            ("train --config c.toml --stop-after 0", "--stop-after"),
            ("train --config missing.toml", "missing.toml"),
            ("sample --run run --temperature NaN", "--temperature"),
            ("sample --run nowhere", "nowhere"),
            ("eval --run nowhere", "nowhere"),
            ("ledger nowhere", "nowhere"),
            ("prepare --input missing.txt --out p", "missing.txt"),
            (
                "prepare --input c.toml --out p --val-fraction 2",
                "val_fraction",
            ),
            ("verify nowhere", "nowhere"),
            ("sweep --config missing.toml", "missing.toml"),
        ];
        for (line, needle) in args {
            cases.push((line.split(' ').map(String::from).collect(), needle));
        }
        let mut clear = 0;
        for (args, needle) in &cases {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let o = self.command(&dir, &args).output().expect("runs");
            let err = stderr(&o);
            if !o.status.success() && err.contains(needle) && !err.contains("panicked") {
                clear += 1;
            } else {
                self.wrong(
                    &args.join(" "),
                    format!("exit {:?}: {err}", o.status.code()),
                );
            }
        }
        println!(
            "bad inputs: {clear} of {} failed with a message naming them",
            cases.len()
        );
        format!("{clear}/{} clear errors", cases.len())
    }
}

/// A different byte: a digit becomes another digit (still valid JSON, so only a checksum can
/// tell), anything else has its low bit flipped.
fn damaged(b: u8) -> u8 {
    match b {
        b'0'..=b'8' => b + 1,
        b'9' => b'0',
        _ => b ^ 1,
    }
}

/// Every file under `dir` with its bytes (the lock file aside: it records the last holder).
fn contents(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .file_name()
                .is_some_and(|n| n != syllabus::fsutil::LOCK_FILE)
            {
                out.insert(path.clone(), std::fs::read(&path).unwrap_or_default());
            }
        }
    }
    out
}
