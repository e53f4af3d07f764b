//! Parsers for the zero-shot eval files (`eval.tasks_dir`, file names in `docs/eval.md`; each
//! parser's doc names the JSON fields it reads). Prompts follow lm-eval-harness's zero-shot
//! templates. Each reads the first `limit` examples (0 = all), always the same ones, so limited
//! runs compare; a malformed example is an error naming `file:line`, the field, and what was
//! expected.

use std::path::Path;

use super::choice::ChoiceExample;
use super::jsonl::{read_records, read_text, Record};
use super::lambada::ClozeExample;
use super::EvalError;

/// LAMBADA: `{"text"}`; the target is the last whitespace-separated word.
pub fn lambada(path: &Path, limit: usize) -> Result<Vec<ClozeExample>, EvalError> {
    read_records(path, limit)?
        .iter()
        .map(|r| {
            ClozeExample::from_passage(r.str("text")?).ok_or_else(|| {
                r.error("field `text`: expected a passage of several words, found one word")
            })
        })
        .collect()
}

/// HellaSwag: `{"activity_label", "ctx", "endings": [..], "label"}`. Query
/// `activity_label + ": " + ctx`, options `" " + ending`, both cleaned of WikiHow markup as
/// lm-eval's `hellaswag` does ([`hellaswag_clean`]), so the original release and copies that
/// were cleaned already give the same prompts.
pub fn hellaswag(path: &Path, limit: usize) -> Result<Vec<ChoiceExample>, EvalError> {
    read_records(path, limit)?
        .iter()
        .map(|r| {
            let query = format!("{}: {}", r.str("activity_label")?, r.str("ctx")?);
            let context = hellaswag_clean(&query);
            let endings: Vec<String> = r
                .str_list("endings", None)?
                .iter()
                .map(|e| hellaswag_clean(e))
                .collect();
            let label = index_field(r, "label", endings.len())?;
            Ok(shared_context(&context, &endings, label))
        })
        .collect()
}

/// PIQA: `{"goal", "sol1", "sol2", "label": 0|1}`. Query `"Question: " + goal + "\nAnswer:"`,
/// options `" " + sol` (lm-eval's `piqa`).
pub fn piqa(path: &Path, limit: usize) -> Result<Vec<ChoiceExample>, EvalError> {
    read_records(path, limit)?
        .iter()
        .map(|r| {
            let context = format!("Question: {}\nAnswer:", r.str("goal")?);
            let sols = [r.str("sol1")?.to_string(), r.str("sol2")?.to_string()];
            let label = index_field(r, "label", 2)?;
            Ok(shared_context(&context, &sols, label))
        })
        .collect()
}

/// ARC (Easy or Challenge): `{"question", "choices": {"text", "label"}, "answerKey"}`, 3 to 5
/// options with letter or digit labels. Query `"Question: " + question + "\nAnswer:"`, options
/// `" " + text` (lm-eval's `arc_easy`).
pub fn arc(path: &Path, limit: usize) -> Result<Vec<ChoiceExample>, EvalError> {
    read_records(path, limit)?
        .iter()
        .map(|r| {
            let context = format!("Question: {}\nAnswer:", r.str("question")?);
            let texts = r.str_list("choices", Some("text"))?;
            let labels = r.str_list("choices", Some("label"))?;
            if labels.len() != texts.len() {
                return Err(r.error(format!(
                    "field `choices.label`: expected one label per choice ({}), found {}",
                    texts.len(),
                    labels.len()
                )));
            }
            let key = r.str("answerKey")?;
            let label = labels.iter().position(|l| l == key).ok_or_else(|| {
                r.error(format!(
                    "field `answerKey`: expected one of {labels:?}, found {key:?}"
                ))
            })?;
            Ok(shared_context(&context, &texts, label))
        })
        .collect()
}

/// WinoGrande: `{"sentence" (one `_`), "option1", "option2", "answer": "1"|"2"}`, scored by
/// partial evaluation (Trinh & Le 2018; lm-eval's `winogrande`): the blank is filled with each
/// option, the text up to and including the option is the context, and the same remainder of
/// the sentence is scored under each.
pub fn winogrande(path: &Path, limit: usize) -> Result<Vec<ChoiceExample>, EvalError> {
    read_records(path, limit)?
        .iter()
        .map(|r| {
            let sentence = r.str("sentence")?;
            let blanks = sentence.matches('_').count();
            if blanks != 1 {
                return Err(r.error(format!(
                    "field `sentence`: expected exactly one `_` blank, found {blanks}"
                )));
            }
            let at = sentence.find('_').unwrap_or_default();
            let rest = format!(" {}", sentence[at + 1..].trim());
            let prefix = &sentence[..at];
            let options = [r.str("option1")?, r.str("option2")?]
                .iter()
                .map(|o| (format!("{prefix}{o}"), rest.clone()))
                .collect();
            let label = match r.str("answer")? {
                "1" => 0,
                "2" => 1,
                other => {
                    return Err(r.error(format!(
                        "field `answer`: expected \"1\" or \"2\", found {other:?}"
                    )))
                }
            };
            Ok(ChoiceExample { options, label })
        })
        .collect()
}

/// A plain-text perplexity set (WikiText-2 raw test), decompressed when `.gz`.
pub fn raw_text(path: &Path) -> Result<String, EvalError> {
    let text = read_text(path)?;
    if text.trim().is_empty() {
        return Err(EvalError::Invalid(format!(
            "{}: expected text to score, found an empty file",
            path.display()
        )));
    }
    Ok(text)
}

/// lm-eval's HellaSwag `preprocess`: trim, ` [title]` becomes `. `, every other `[...]` tag on
/// a line (`[header]`, `[step]`, `[substeps]`) is removed, then double spaces become single
/// (one left-to-right pass, as Python's `str.replace`). Cleaning cleaned text again changes
/// nothing but runs of three or more spaces the first pass left.
fn hellaswag_clean(text: &str) -> String {
    let text = text.trim().replace(" [title]", ". ");
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(open) = rest.find('[') {
        let tail = &rest[open..];
        match tail.find([']', '\n']) {
            Some(close) if tail.as_bytes()[close] == b']' => {
                out.push_str(&rest[..open]);
                rest = &tail[close + 1..];
            }
            _ => {
                out.push_str(&rest[..=open]);
                rest = &rest[open + 1..];
            }
        }
    }
    out.push_str(rest);
    out.replace("  ", " ")
}

fn shared_context(context: &str, endings: &[String], label: usize) -> ChoiceExample {
    ChoiceExample {
        options: endings
            .iter()
            .map(|e| (context.to_string(), format!(" {e}")))
            .collect(),
        label,
    }
}

/// An integer field that indexes one of `n` options.
fn index_field(r: &Record, field: &str, n: usize) -> Result<usize, EvalError> {
    let v = r.int(field)?;
    usize::try_from(v).ok().filter(|&i| i < n).ok_or_else(|| {
        r.error(format!(
            "field `{field}`: expected an option index in 0..{n}, found {v}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::hellaswag_clean;

    #[test]
    fn hellaswag_markup_is_cleaned_as_lm_eval_does() {
        let raw = "Home: [header] How to plant a tree [title] Dig a hole. [step] Water it [sic].";
        let clean = "Home: How to plant a tree. Dig a hole. Water it .";
        assert_eq!(hellaswag_clean(raw), clean);
        assert_eq!(hellaswag_clean(clean), clean, "cleaned text stays as it is");
        assert_eq!(
            hellaswag_clean(" a [b"),
            "a [b",
            "an unclosed bracket stays"
        );
        assert_eq!(
            hellaswag_clean("a [b\nc] d"),
            "a [b\nc] d",
            "tags do not span lines"
        );
        assert_eq!(
            hellaswag_clean("a   b"),
            "a  b",
            "one pass, like str.replace"
        );
    }
}
