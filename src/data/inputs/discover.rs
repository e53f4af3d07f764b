//! Expanding `--input` arguments (files, directories, glob patterns) into input files.

use std::path::{Path, PathBuf};

use super::{Compression, Format, InputFile};
use crate::data::DataError;

/// Expands files, directories (recursively, sorted by path; hidden entries skipped) and glob
/// patterns (sorted; hidden entries only when the pattern names them) into input files,
/// keeping the order of `inputs`. Unsupported extensions are errors, and so is a pattern that
/// matches nothing (a typo must not silently drop a corpus).
pub(crate) fn discover(inputs: &[PathBuf]) -> Result<Vec<InputFile>, DataError> {
    let mut files = Vec::new();
    for input in inputs {
        for path in expand(input)? {
            files.push(classify(path)?);
        }
    }
    Ok(files)
}

/// The files one argument stands for. A path that exists is taken literally, even if its
/// name holds glob characters; otherwise an argument with `*`, `?` or `[` is a pattern.
fn expand(input: &Path) -> Result<Vec<PathBuf>, DataError> {
    match std::fs::metadata(input) {
        Ok(meta) if meta.is_dir() => walk_sorted(input),
        Ok(_) => Ok(vec![input.to_path_buf()]),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match pattern_of(input) {
            Some(pattern) => expand_glob(pattern),
            None => Err(DataError::MissingInput {
                path: input.to_path_buf(),
            }),
        },
        Err(e) => Err(DataError::io(input, e)),
    }
}

fn pattern_of(input: &Path) -> Option<&str> {
    input.to_str().filter(|s| s.contains(['*', '?', '[']))
}

fn expand_glob(pattern: &str) -> Result<Vec<PathBuf>, DataError> {
    let options = glob::MatchOptions {
        // As for walked directories: `*` does not pick up .DS_Store or editor swap files.
        require_literal_leading_dot: true,
        ..glob::MatchOptions::new()
    };
    let paths = glob::glob_with(pattern, options).map_err(|e| {
        DataError::InvalidArgument(format!("invalid glob pattern {pattern:?}: {e}"))
    })?;
    let mut matched = Vec::new();
    for entry in paths {
        let path = entry.map_err(|e| {
            let path = e.path().to_path_buf();
            DataError::io(path, e.into())
        })?;
        matched.push(path);
    }
    if matched.is_empty() {
        return Err(DataError::NoMatches {
            pattern: pattern.to_string(),
        });
    }
    // glob yields sorted paths per directory level; sort the whole list so the document order
    // (and with it the output) depends on the names only.
    matched.sort();
    let mut files = Vec::new();
    for path in matched {
        files.extend(expand(&path)?);
    }
    Ok(files)
}

fn walk_sorted(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut found = Vec::new();
    walk(dir, &mut found)?;
    found.sort();
    Ok(found)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), DataError> {
    let entries = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| DataError::io(dir, e))?;
        let path = entry.path();
        // Dot-files (.DS_Store, .gitkeep, editor swap files) are never corpus data.
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        // metadata() follows symlinks, so linked files and directories are included.
        let meta = std::fs::metadata(&path).map_err(|e| DataError::io(&path, e))?;
        if meta.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// Format and compression from the (lower-cased) file name.
fn kind_of(name: &str) -> Option<(Format, Compression)> {
    if name.ends_with(".parquet") {
        return Some((Format::Parquet, Compression::None));
    }
    let (stem, compression) = if let Some(s) = name.strip_suffix(".gz") {
        (s, Compression::Gzip)
    } else if let Some(s) = name.strip_suffix(".zst") {
        (s, Compression::Zstd)
    } else {
        (name, Compression::None)
    };
    if stem.ends_with(".txt") {
        Some((Format::Txt, compression))
    } else if stem.ends_with(".jsonl") {
        Some((Format::Jsonl, compression))
    } else {
        None
    }
}

fn classify(path: PathBuf) -> Result<InputFile, DataError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let Some((format, compression)) = kind_of(&name) else {
        return Err(DataError::UnsupportedExtension { path });
    };
    let disk_bytes = std::fs::metadata(&path)
        .map_err(|e| DataError::io(&path, e))?
        .len();
    Ok(InputFile {
        path,
        format,
        compression,
        disk_bytes,
    })
}

/// Source name of a `.txt` document: the file name without `.txt` and any compression suffix.
pub(super) fn txt_source(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let lower = name.to_lowercase();
    // classify() guaranteed a `.txt` before any compression suffix.
    let cut = match lower.rfind(".txt") {
        Some(i) => name.len() - i,
        None => 0,
    };
    name.len()
        .checked_sub(cut)
        .and_then(|end| name.get(..end))
        .unwrap_or(&name)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_by_extension() {
        assert_eq!(kind_of("b.txt"), Some((Format::Txt, Compression::None)));
        assert_eq!(
            kind_of("x.jsonl.gz"),
            Some((Format::Jsonl, Compression::Gzip))
        );
        assert_eq!(
            kind_of("x.jsonl.zst"),
            Some((Format::Jsonl, Compression::Zstd))
        );
        assert_eq!(kind_of("y.txt.zst"), Some((Format::Txt, Compression::Zstd)));
        assert_eq!(
            kind_of("train-00001.parquet"),
            Some((Format::Parquet, Compression::None))
        );
        for bad in ["x.json", "x.gz", "x.zst", "x.parquet.gz", "x.csv"] {
            assert_eq!(kind_of(bad), None, "{bad}");
        }
        let c = classify(PathBuf::from("a/B.TXT")).err();
        assert!(
            c.is_some_and(|e| e.to_string().contains("B.TXT")),
            "missing file"
        );
    }

    #[test]
    fn txt_source_drops_every_suffix() {
        assert_eq!(txt_source(Path::new("d/Moby.Dick.txt.gz")), "Moby.Dick");
        assert_eq!(txt_source(Path::new("d/Emma.TXT.ZST")), "Emma");
        assert_eq!(txt_source(Path::new("plain.txt")), "plain");
    }

    #[test]
    fn globs_expand_sorted_and_empty_patterns_fail() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in [
            "s-2.jsonl",
            "s-10.jsonl",
            "s-1.jsonl",
            ".s-0.jsonl",
            "t.jsonl",
        ] {
            std::fs::write(dir.path().join(name), "{\"text\":\"x\"}\n").expect("write");
        }
        let pattern = dir.path().join("s-*.jsonl");
        let files = discover(&[pattern]).expect("matches");
        let names: Vec<_> = files
            .iter()
            .filter_map(|f| f.path.file_name()?.to_str().map(str::to_string))
            .collect();
        assert_eq!(names, ["s-1.jsonl", "s-10.jsonl", "s-2.jsonl"]);

        let none = dir.path().join("nothing-*.parquet");
        let err = discover(std::slice::from_ref(&none))
            .err()
            .map(|e| e.to_string());
        let expected = format!("no input files match the pattern {}", none.display());
        assert_eq!(err.as_deref(), Some(expected.as_str()));

        let missing = dir.path().join("missing.jsonl");
        let err = discover(&[missing]).err();
        assert!(matches!(err, Some(DataError::MissingInput { .. })));
    }
}
