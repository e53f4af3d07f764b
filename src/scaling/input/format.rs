//! The column-mapping step: which loss-table layout a CSV has, and how each of its rows
//! becomes (N, D, FLOPs, loss in nats, run, seed).
//!
//! | format | detected by | N | D | FLOPs | loss | run |
//! |---|---|---|---|---|---|---|
//! | `colpret` (also our sweep's `results.csv`) | `num_params`, `tokens_seen`, `loss` | `num_params` (k/m/b/t suffix allowed) | `tokens_seen` | `flops`, or 6·N·D when the column or cell is missing | `loss` | `run`, else `model_name` (+ seed), else N (+ seed) |
//! | `chinchilla` (ColPret `chinchila_extracted.csv`) | `Model Size`, `Training FLOP`, `loss` | `Model Size` | C / (6·N) | `Training FLOP` | `loss` | N rounded to an integer, as ColPret names these models |
//! | `datablations` (ColPret `datablations_losses.csv`) | `num_params`, `token_num`, `loss` | `num_params` (`2.8B`) | `token_num` | 6·N·D (the file's `flops` column is not cumulative compute, see below) | `loss` | N/data/epochs |
//! | `opt` (ColPret `opt_trajectories.csv`) | `model_size`, `num_token`, `ppl` | `model_size` (`125m`) | 10^`num_token` | 10^`flops` | ln(`ppl`) | `model_size` |
//!
//! Why the datablations `flops` column is ignored: within one run it *falls* as tokens grow
//! (4.9e23 at 1.0e8 tokens, 9.3e20 at 5.5e10 for the 2.8B model); it equals
//! 6·N·D_final²/D, so it is not the compute spent up to the checkpoint. 6·N·D is.
//!
//! Why ln(ppl) for OPT: our losses are mean NLL in nats, and ln(perplexity) is exactly that.
//! (ColPret's normaliser takes log2 of perplexity columns; that only rescales E, A and B by
//! 1/ln 2 and leaves the exponents unchanged.)

use std::collections::HashMap;
use std::str::FromStr;

use serde::Serialize;

use super::values;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Colpret,
    Chinchilla,
    Datablations,
    Opt,
}

/// One row mapped to the quantities a scaling law needs.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Mapped {
    pub num_params: f64,
    pub tokens: f64,
    pub flops: f64,
    pub loss: f64,
    pub run: String,
    pub seed: Option<String>,
}

/// A rejected cell: (column, raw value, what was expected).
pub(super) type CellError = (String, String, String);

impl Format {
    /// Detection order matters: the published tables are tried before the generic ColPret
    /// layout, whose columns a richer table could also carry.
    pub const ALL: [Format; 4] = [
        Format::Chinchilla,
        Format::Opt,
        Format::Datablations,
        Format::Colpret,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Colpret => "colpret",
            Format::Chinchilla => "chinchilla",
            Format::Datablations => "datablations",
            Format::Opt => "opt",
        }
    }

    /// Columns the format cannot do without.
    pub fn required(self) -> &'static [&'static str] {
        match self {
            Format::Colpret => &["num_params", "tokens_seen", "loss"],
            Format::Chinchilla => &["Model Size", "Training FLOP", "loss"],
            Format::Datablations => &["num_params", "token_num", "loss"],
            Format::Opt => &["model_size", "num_token", "ppl"],
        }
    }

    /// One line on how the columns are read, printed with every fit.
    pub fn mapping(self) -> &'static str {
        match self {
            Format::Colpret => {
                "N = num_params, D = tokens_seen, loss = loss, FLOPs = flops or 6*N*D if missing"
            }
            Format::Chinchilla => {
                "N = `Model Size`, FLOPs = `Training FLOP`, D = FLOPs / (6*N), loss = loss"
            }
            Format::Datablations => {
                "N = num_params (2.8B-style), D = token_num, loss = loss, FLOPs = 6*N*D \
                 (the file's flops column is not cumulative compute and is ignored)"
            }
            Format::Opt => {
                "N = model_size (125m-style), D = 10^num_token, FLOPs = 10^flops, loss = ln(ppl)"
            }
        }
    }

    /// The first format whose required columns are all in `header`.
    pub fn detect(header: &[String]) -> Option<Format> {
        Format::ALL
            .into_iter()
            .find(|f| f.missing_columns(header).is_empty())
    }

    pub fn missing_columns(self, header: &[String]) -> Vec<String> {
        self.required()
            .iter()
            .filter(|c| !header.iter().any(|h| h == *c))
            .map(|c| c.to_string())
            .collect()
    }

    /// "colpret (num_params, tokens_seen, loss), ..." for error messages.
    pub fn describe_all() -> String {
        Format::ALL
            .iter()
            .map(|f| format!("{} ({})", f.name(), f.required().join(", ")))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub(super) fn map_row(self, row: &Row<'_>) -> Result<Mapped, CellError> {
        match self {
            Format::Colpret => map_colpret(row),
            Format::Chinchilla => map_chinchilla(row),
            Format::Datablations => map_datablations(row),
            Format::Opt => map_opt(row),
        }
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                format!("unknown format `{s}`; expected colpret, chinchilla, datablations or opt")
            })
    }
}

/// One CSV record with its header lookup.
pub(super) struct Row<'a> {
    pub index: &'a HashMap<String, usize>,
    pub fields: &'a [String],
}

impl Row<'_> {
    /// The trimmed cell of `column`, `None` when the column is absent or the cell is empty.
    fn cell(&self, column: &str) -> Option<&str> {
        let i = *self.index.get(column)?;
        let s = self.fields.get(i)?.trim();
        (!s.is_empty()).then_some(s)
    }

    fn parse(&self, column: &str, f: fn(&str) -> Result<f64, String>) -> Result<f64, CellError> {
        let raw = self.cell(column).unwrap_or("");
        f(raw).map_err(|expected| (column.to_string(), raw.to_string(), expected))
    }

    fn optional(
        &self,
        column: &str,
        f: fn(&str) -> Result<f64, String>,
    ) -> Result<Option<f64>, CellError> {
        match self.cell(column) {
            None => Ok(None),
            Some(_) => self.parse(column, f).map(Some),
        }
    }
}

/// Training compute when a table has no FLOP count: the standard 6·N·D estimate (Kaplan et al.
/// 2020), which ColPret also fills in.
fn six_nd(n: f64, d: f64) -> f64 {
    6.0 * n * d
}

fn map_colpret(row: &Row<'_>) -> Result<Mapped, CellError> {
    let num_params = row.parse("num_params", values::count)?;
    let tokens = row.parse("tokens_seen", values::positive)?;
    let loss = row.parse("loss", values::positive)?;
    let flops = row
        .optional("flops", values::positive)?
        .unwrap_or_else(|| six_nd(num_params, tokens));
    let seed = row.cell("seed").map(str::to_string);
    let base = row
        .cell("run")
        .map(str::to_string)
        .or_else(|| row.cell("model_name").map(str::to_string))
        .unwrap_or_else(|| format!("N={}", row.cell("num_params").unwrap_or("")));
    // An explicit run id is already unique; a model name is shared by its seeds.
    let run = match (&seed, row.cell("run")) {
        (Some(s), None) => format!("{base}#seed{s}"),
        _ => base,
    };
    Ok(Mapped {
        num_params,
        tokens,
        flops,
        loss,
        run,
        seed,
    })
}

fn map_chinchilla(row: &Row<'_>) -> Result<Mapped, CellError> {
    let num_params = row.parse("Model Size", values::positive)?;
    let flops = row.parse("Training FLOP", values::positive)?;
    let loss = row.parse("loss", values::positive)?;
    Ok(Mapped {
        num_params,
        tokens: flops / (6.0 * num_params),
        flops,
        loss,
        run: format!("{:.0}", num_params.trunc()),
        seed: None,
    })
}

fn map_datablations(row: &Row<'_>) -> Result<Mapped, CellError> {
    let num_params = row.parse("num_params", values::count)?;
    let tokens = row.parse("token_num", values::positive)?;
    let loss = row.parse("loss", values::positive)?;
    let run = ["num_params", "data", "epochs"]
        .iter()
        .filter_map(|c| row.cell(c))
        .collect::<Vec<_>>()
        .join("/");
    Ok(Mapped {
        num_params,
        tokens,
        flops: six_nd(num_params, tokens),
        loss,
        run,
        seed: None,
    })
}

fn map_opt(row: &Row<'_>) -> Result<Mapped, CellError> {
    let num_params = row.parse("model_size", values::count)?;
    let tokens = row.parse("num_token", values::pow10)?;
    let loss = row.parse("ppl", values::loss_from_ppl)?;
    let flops = row
        .optional("flops", values::pow10)?
        .unwrap_or_else(|| six_nd(num_params, tokens));
    Ok(Mapped {
        num_params,
        tokens,
        flops,
        loss,
        run: row.cell("model_size").unwrap_or("").to_string(),
        seed: None,
    })
}
