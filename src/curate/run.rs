//! One curation run: inputs file by file through the pipeline into shards, then the report.
//!
//! Layout of `output.dir`: `shards/part-FFFFF-SSSSS.jsonl.zst` (give `shards/` to `syllabus
//! prepare`), `curate.json`, `curate.md`, and `curate.progress.json`, rewritten atomically
//! after each input file with the files done and the report so far.
//!
//! `--resume` skips the input files the progress record lists as done and deletes any shards
//! of unfinished ones. Dedup state is not persisted: it is rebuilt by replaying the finished
//! files through the stages up to the last dedup stage (no classifier, no writing), which is
//! what keeps a resumed run's output identical to an uninterrupted one. Resuming a run with
//! `quality.keep_fraction` is refused (its cut needs every score of the run).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::config::CurateConfig;
use super::normalize::hash64;
use super::output::{read_shard, Line, ShardWriter};
use super::pipeline::Pipeline;
use super::report::Report;
use super::{CurateError, Doc};
use crate::data::inputs::{discover, read_docs, Columns, InputFile};

pub const REPORT_JSON: &str = "curate.json";
pub const REPORT_MD: &str = "curate.md";
pub const PROGRESS_FILE: &str = "curate.progress.json";
const SHARDS: &str = "shards";
const SPOOL: &str = ".spool";

#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    pub overwrite: bool,
    pub resume: bool,
}

#[derive(Serialize, Deserialize)]
struct Progress {
    /// Hash of the config; a resumed run must use the same one.
    fingerprint: String,
    done: Vec<PathBuf>,
    report: Report,
}

fn fingerprint(cfg: &CurateConfig) -> String {
    let text = toml::to_string(cfg).unwrap_or_default();
    format!("{:016x}", hash64(text.as_bytes(), 0))
}

/// Runs the pipeline of `cfg`; returns the report (also written to the output directory).
pub fn curate(cfg: &CurateConfig, opts: RunOptions) -> Result<Report, CurateError> {
    let files = discover(&cfg.inputs)?;
    let dir = &cfg.output.dir;
    let keep_fraction = cfg
        .quality
        .as_ref()
        .filter(|q| q.enabled)
        .and_then(|q| q.keep_fraction);
    let progress = prepare_dir(dir, cfg, opts, keep_fraction.is_some())?;
    let _lock = crate::fsutil::DirLock::acquire(dir, "curate")?;
    let shard_dir = dir.join(if keep_fraction.is_some() {
        SPOOL
    } else {
        SHARDS
    });
    std::fs::create_dir_all(&shard_dir).map_err(|e| CurateError::io(&shard_dir, e))?;
    std::fs::create_dir_all(dir.join(SHARDS)).map_err(|e| CurateError::io(dir, e))?;
    let mut pipeline = Pipeline::new(cfg)?;
    let mut done = progress
        .as_ref()
        .map(|p| p.done.clone())
        .unwrap_or_default();
    if let Some(p) = progress {
        pipeline.report = restore(p.report, &pipeline.report);
    }
    let mut scores = Vec::new();
    for (i, file) in files.iter().enumerate() {
        if done.contains(&file.path) {
            replay(&mut pipeline, file, cfg)?;
            continue;
        }
        remove_matching(&shard_dir, &format!("part-{i:05}-"))?;
        let mut w = writer(cfg, &shard_dir, i, keep_fraction.is_some());
        read_docs(file, &Columns::default(), cfg.batch_mib << 20, |raw| {
            let docs = to_docs(raw.docs);
            for d in &docs {
                pipeline.report.read_input(&d.source, d.counts);
            }
            let kept = pipeline.filter(docs, false);
            emit(
                &mut pipeline,
                &mut w,
                kept,
                keep_fraction.is_some(),
                &mut scores,
            )
            .map_err(to_data_error)
        })
        .map_err(from_data_error)?;
        w.close()?;
        pipeline
            .report
            .shards
            .extend(w.finished.iter().map(|n| format!("{SHARDS}/{n}")));
        done.push(file.path.clone());
        save_progress(dir, cfg, &done, &pipeline.report)?;
    }
    if let Some(fraction) = keep_fraction {
        finish_top_fraction(&mut pipeline, cfg, &files, &scores, fraction)?;
    }
    for (k, v) in pipeline.state_summary() {
        pipeline.report.state.insert(k.into(), v);
    }
    write_report(dir, &pipeline.report)?;
    Ok(pipeline.report)
}

/// Checks or clears `dir` for this run; the progress record when resuming.
fn prepare_dir(
    dir: &Path,
    cfg: &CurateConfig,
    opts: RunOptions,
    top_fraction: bool,
) -> Result<Option<Progress>, CurateError> {
    let resume_err = |reason: &str| CurateError::Resume {
        path: dir.to_path_buf(),
        reason: reason.into(),
    };
    if opts.resume {
        if top_fraction {
            return Err(resume_err(
                "quality.keep_fraction needs every score of one run",
            ));
        }
        let path = dir.join(PROGRESS_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(CurateError::io(&path, e)),
        };
        let p: Progress = serde_json::from_str(&text).map_err(|e| resume_err(&e.to_string()))?;
        if p.fingerprint != fingerprint(cfg) {
            return Err(resume_err("the config differs from the interrupted run's"));
        }
        return Ok(Some(p));
    }
    let non_empty = std::fs::read_dir(dir)
        .is_ok_and(|mut d| d.any(|e| e.is_ok_and(|e| e.file_name() != crate::fsutil::LOCK_FILE)));
    if non_empty && !opts.overwrite {
        return Err(CurateError::OutputExists {
            path: dir.to_path_buf(),
        });
    }
    for sub in [SHARDS, SPOOL] {
        remove_matching(&dir.join(sub), "part-")?;
    }
    for f in [PROGRESS_FILE, REPORT_JSON, REPORT_MD] {
        match std::fs::remove_file(dir.join(f)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(CurateError::io(&dir.join(f), e))
            }
            _ => {}
        }
    }
    Ok(None)
}

/// Deletes the files in `dir` whose names start with `prefix` (finished or temporary).
fn remove_matching(dir: &Path, prefix: &str) -> Result<(), CurateError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(prefix) {
            std::fs::remove_file(e.path()).map_err(|err| CurateError::io(&e.path(), err))?;
        }
    }
    Ok(())
}

fn writer(cfg: &CurateConfig, dir: &Path, file: usize, spool: bool) -> ShardWriter {
    let o = &cfg.output;
    let (format, cap) = match spool {
        true => (super::config::OutputFormat::JsonlZst, u64::MAX),
        false => (o.format, (o.shard_mib as u64) << 20),
    };
    ShardWriter::new(dir, format!("part-{file:05}"), format, o.zstd_level, cap)
}

fn to_docs(raw: Vec<crate::data::inputs::RawDoc>) -> Vec<Doc> {
    raw.into_iter()
        .filter(|d| !d.text.trim().is_empty())
        .map(|d| Doc::new(d.text, d.source))
        .collect()
}

// The reader's callback returns the data module's error; ours travels inside an io::Error.
fn to_data_error(e: CurateError) -> crate::data::DataError {
    crate::data::DataError::Io {
        path: PathBuf::new(),
        source: std::io::Error::other(e),
    }
}

fn from_data_error(e: crate::data::DataError) -> CurateError {
    match e {
        crate::data::DataError::Io { path, source } if path.as_os_str().is_empty() => {
            match source.into_inner().map(|b| b.downcast::<CurateError>()) {
                Some(Ok(inner)) => *inner,
                Some(Err(other)) => CurateError::io(&path, std::io::Error::other(other)),
                None => CurateError::io(&path, std::io::Error::other("unknown error")),
            }
        }
        other => CurateError::Input(other),
    }
}

/// Counts each document into the report, then records the rest.
fn emit(
    p: &mut Pipeline,
    w: &mut ShardWriter,
    docs: Vec<Doc>,
    spool: bool,
    scores: &mut Vec<f64>,
) -> Result<(), CurateError> {
    for d in docs {
        if spool {
            scores.push(d.score.unwrap_or(0.0));
            w.write(&line(&d))?;
            continue;
        }
        write_copies(p, w, &d)?;
    }
    Ok(())
}

fn line(d: &Doc) -> Line<'_> {
    Line {
        text: d.text.as_str().into(),
        source: d.source.as_str().into(),
        score: d.score,
    }
}

fn write_copies(p: &mut Pipeline, w: &mut ShardWriter, d: &Doc) -> Result<(), CurateError> {
    for _ in 0..p.copies(d) {
        w.write(&Line {
            score: None,
            ..line(d)
        })?;
        p.report.wrote(&d.source, d.counts);
    }
    Ok(())
}

/// Rebuilds dedup state from a finished file without touching the report or the output.
fn replay(p: &mut Pipeline, file: &InputFile, cfg: &CurateConfig) -> Result<(), CurateError> {
    let real = std::mem::replace(&mut p.report, Report::new(&[], 0, 0));
    p.report = Report::new(
        &real
            .stages
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        0,
        0,
    );
    let result = read_docs(file, &Columns::default(), cfg.batch_mib << 20, |raw| {
        p.filter(to_docs(raw.docs), true);
        Ok(())
    });
    p.report = real;
    result.map(|_| ()).map_err(from_data_error)
}

/// A report read back from a progress record, with the settings that are not serialised.
fn restore(mut saved: Report, fresh: &Report) -> Report {
    saved.max_examples = fresh.max_examples;
    saved.example_chars = fresh.example_chars;
    saved
}

fn save_progress(
    dir: &Path,
    cfg: &CurateConfig,
    done: &[PathBuf],
    report: &Report,
) -> Result<(), CurateError> {
    let p = Progress {
        fingerprint: fingerprint(cfg),
        done: done.to_vec(),
        report: report.clone(),
    };
    let bytes = serde_json::to_vec_pretty(&p).map_err(|e| CurateError::io(dir, e.into()))?;
    let path = dir.join(PROGRESS_FILE);
    crate::fsutil::write_atomic(&path, &bytes).map_err(|e| CurateError::io(&path, e))
}

fn write_report(dir: &Path, report: &Report) -> Result<(), CurateError> {
    let json = serde_json::to_vec_pretty(report).map_err(|e| CurateError::io(dir, e.into()))?;
    for (name, bytes) in [
        (REPORT_JSON, json),
        (REPORT_MD, report.to_markdown().into_bytes()),
    ] {
        let path = dir.join(name);
        crate::fsutil::write_atomic(&path, &bytes).map_err(|e| CurateError::io(&path, e))?;
    }
    Ok(())
}

/// Keeps the top `fraction` of spooled documents by score (ties: input order), then mixes
/// and writes them. Memory: one flag per scored document.
fn finish_top_fraction(
    p: &mut Pipeline,
    cfg: &CurateConfig,
    files: &[InputFile],
    scores: &[f64],
    fraction: f64,
) -> Result<(), CurateError> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let keep_n = (fraction * scores.len() as f64).ceil() as usize;
    let mut keep = vec![false; scores.len()];
    for &i in order.iter().take(keep_n) {
        keep[i] = true;
    }
    let dir = &cfg.output.dir;
    let spool = dir.join(SPOOL);
    let mut next = 0usize;
    for i in 0..files.len() {
        let mut w = writer(cfg, &dir.join(SHARDS), i, false);
        let path = spool.join(format!("part-{i:05}-00000.jsonl.zst"));
        if path.exists() {
            read_shard(&path, |l| {
                let d = Doc::new(l.text.into_owned(), l.source.into_owned());
                let kept = keep.get(next).copied().unwrap_or(false);
                next += 1;
                match kept {
                    true => write_copies(p, &mut w, &d),
                    false => {
                        p.quality_cut(&d);
                        Ok(())
                    }
                }
            })?;
        }
        w.close()?;
        p.report
            .shards
            .extend(w.finished.iter().map(|n| format!("{SHARDS}/{n}")));
    }
    std::fs::remove_dir_all(&spool).map_err(|e| CurateError::io(&spool, e))
}

/// The `text` of every line of JSONL(.gz) inputs (for `train-classifier`), via the corpus
/// reader.
pub fn read_texts(inputs: &[PathBuf]) -> Result<Vec<String>, CurateError> {
    let mut out = Vec::new();
    for file in discover(inputs)? {
        read_docs(&file, &Columns::default(), 8 << 20, |raw| {
            out.extend(raw.docs.into_iter().map(|d| d.text));
            Ok(())
        })?;
    }
    Ok(out)
}
