//! Reading eval files: one JSON object per line, optionally gzip-compressed, with typed field
//! access whose errors say `file:line: field `x`: expected ..., found ...`.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use serde_json::{Map, Value};

use super::EvalError;

/// A reader over a file, decompressing when the name ends in `.gz`.
pub(crate) fn open_text(path: &Path) -> Result<Box<dyn BufRead>, EvalError> {
    let file = File::open(path).map_err(|e| EvalError::io(path, e))?;
    let gz = path.extension().is_some_and(|e| e == "gz");
    let inner: Box<dyn Read> = if gz {
        Box::new(GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    Ok(Box::new(BufReader::new(inner)))
}

/// The whole file as UTF-8 text (decompressed when `.gz`).
pub(crate) fn read_text(path: &Path) -> Result<String, EvalError> {
    let mut text = String::new();
    open_text(path)?
        .read_to_string(&mut text)
        .map_err(|e| EvalError::io(path, e))?;
    Ok(text)
}

/// One JSON object and where it came from.
pub(crate) struct Record {
    pub path: PathBuf,
    /// 1-based line number.
    pub line: u64,
    pub obj: Map<String, Value>,
}

/// The first `limit` objects of a JSONL file (0 = all). Blank lines are skipped; anything else
/// that is not a JSON object is an error naming the line.
pub(crate) fn read_records(path: &Path, limit: usize) -> Result<Vec<Record>, EvalError> {
    let mut out = Vec::new();
    for (i, line) in open_text(path)?.lines().enumerate() {
        if limit > 0 && out.len() == limit {
            break;
        }
        let number = i as u64 + 1;
        let parse = |message: String| EvalError::Parse {
            path: path.to_path_buf(),
            line: number,
            message,
        };
        let line = line.map_err(|e| parse(format!("cannot read the line: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(&line)
            .map_err(|e| parse(format!("expected one JSON object, got invalid JSON: {e}")))?;
        let Value::Object(obj) = value else {
            return Err(parse(format!(
                "expected a JSON object, found {}",
                show(&value)
            )));
        };
        out.push(Record {
            path: path.to_path_buf(),
            line: number,
            obj,
        });
    }
    Ok(out)
}

impl Record {
    /// An error about this record: `file:line: message`.
    pub fn error(&self, message: impl Into<String>) -> EvalError {
        EvalError::Parse {
            path: self.path.clone(),
            line: self.line,
            message: message.into(),
        }
    }

    fn field_error(&self, field: &str, expected: &str, found: Option<&Value>) -> EvalError {
        let found = found.map_or_else(|| "nothing (missing)".to_string(), show);
        self.error(format!(
            "field `{field}`: expected {expected}, found {found}"
        ))
    }

    pub fn str(&self, field: &str) -> Result<&str, EvalError> {
        match self.obj.get(field) {
            Some(Value::String(s)) => Ok(s),
            other => Err(self.field_error(field, "a string", other)),
        }
    }

    pub fn int(&self, field: &str) -> Result<i64, EvalError> {
        match self.obj.get(field) {
            Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64().unwrap_or_default()),
            other => Err(self.field_error(field, "an integer", other)),
        }
    }

    /// A list of strings at `field`, or at `field.sub` when `sub` is given (ARC's
    /// `choices.text`).
    pub fn str_list(&self, field: &str, sub: Option<&str>) -> Result<Vec<String>, EvalError> {
        let (name, value) = match sub {
            None => (field.to_string(), self.obj.get(field)),
            Some(s) => {
                let parent = match self.obj.get(field) {
                    Some(Value::Object(o)) => o,
                    other => return Err(self.field_error(field, "an object", other)),
                };
                (format!("{field}.{s}"), parent.get(s))
            }
        };
        let expected = "a non-empty list of strings";
        let Some(Value::Array(items)) = value else {
            return Err(self.field_error(&name, expected, value));
        };
        if items.is_empty() {
            return Err(self.field_error(&name, expected, value));
        }
        items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err(self.field_error(&name, expected, value)),
            })
            .collect()
    }
}

/// A JSON value for an error message, cut to a readable length.
fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}...", s.chars().take(57).collect::<String>())
    } else {
        s
    }
}
