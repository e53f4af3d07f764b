//! The sweep file: a base config and the axes of the grid.
//!
//! ```toml
//! name = "lfr-vs-uniform-cpu"
//! base = "../experiments/sweep-cpu.toml"   # relative to this file
//! out_dir = "runs/sweeps"                  # the sweep writes to <out_dir>/<name>/
//! seeds = [1, 2, 3]
//! eval_points = 8                          # evaluations per run, evenly spaced
//!
//! [models.tiny]                            # --set overrides on the base (default: one, as is)
//! set = ["model.n_layer=2"]
//!
//! [budgets.c1]                             # a complete [budget] table per compute class
//! accelerator_hours = 0.01
//! throughput_file = "runs/sweeps/reference.json"
//!
//! [policies.uniform]
//! policy = "uniform"
//! [policies.lfr]
//! policy = "lfr"
//! params = { drop = "lowest" }             # the [sampling.lfr] table
//! ```
//!
//! Every grid point is one run named `<model>-<budget>-<policy>-s<seed>`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::SweepError;
use crate::budget::BudgetConfig;
use crate::config::Config;
use crate::fsutil::is_safe_name;
use crate::model::ModelRegistry;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    pub name: String,
    /// The base run config, relative to the sweep file.
    pub base: PathBuf,
    /// Parent of the sweep's directory. Default "runs/sweeps".
    #[serde(default = "default_out_dir")]
    pub out_dir: PathBuf,
    pub seeds: Vec<u64>,
    /// Validation evaluations per run at evenly spaced steps (`eval.points`); the intermediate
    /// points scaling fits use. Default 8.
    #[serde(default = "default_eval_points")]
    pub eval_points: u64,
    #[serde(default)]
    pub models: BTreeMap<String, ModelAxis>,
    pub budgets: BTreeMap<String, BudgetConfig>,
    pub policies: BTreeMap<String, PolicyAxis>,
}

fn default_out_dir() -> PathBuf {
    PathBuf::from("runs/sweeps")
}
fn default_eval_points() -> u64 {
    8
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelAxis {
    /// `key=value` overrides applied to the base config.
    #[serde(default)]
    pub set: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyAxis {
    /// Registry name.
    pub policy: String,
    /// The policy's `[sampling.<policy>]` table.
    #[serde(default)]
    pub params: toml::Table,
}

/// One grid point, with its resolved config.
#[derive(Clone, Debug)]
pub struct RunSpec {
    pub label: String,
    pub model: String,
    pub budget: String,
    pub policy: String,
    pub seed: u64,
    pub config: Config,
}

impl SweepSpec {
    pub fn load(path: &Path) -> Result<(Self, toml::Table), SweepError> {
        let bad = |message: String| SweepError::Spec {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let mut spec: SweepSpec = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let problems = spec.problems();
        if !problems.is_empty() {
            return Err(bad(format!("\n  - {}", problems.join("\n  - "))));
        }
        let base_path = path.parent().unwrap_or(Path::new(".")).join(&spec.base);
        let base_text = std::fs::read_to_string(&base_path)
            .map_err(|e| bad(format!("base {}: {e}", base_path.display())))?;
        let base: toml::Table = toml::from_str(&base_text)
            .map_err(|e| bad(format!("base {}: {e}", base_path.display())))?;
        if spec.models.is_empty() {
            spec.models.insert("base".into(), ModelAxis::default());
        }
        spec.base = base_path;
        Ok((spec, base))
    }

    fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !is_safe_name(&self.name) {
            p.push(format!(
                "name {:?} must be a plain folder name (letters, digits, '.', '_', '-'; not \
                 starting with '.')",
                self.name
            ));
        }
        // Axis keys become parts of run directory names.
        let keys = (self.models.keys().map(|k| ("models", k)))
            .chain(self.budgets.keys().map(|k| ("budgets", k)))
            .chain(self.policies.keys().map(|k| ("policies", k)));
        for (axis, key) in keys {
            if !is_safe_name(key) {
                p.push(format!(
                    "{axis}.{key:?}: a label must be a plain name (letters, digits, '.', '_', \
                     '-'; not starting with '.'): it names the runs' directories"
                ));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for seed in &self.seeds {
            if !seen.insert(seed) {
                p.push(format!(
                    "seeds: {seed} is listed twice (two runs would share a directory)"
                ));
            }
        }
        for (axis, empty) in [
            ("seeds", self.seeds.is_empty()),
            ("budgets", self.budgets.is_empty()),
            ("policies", self.policies.is_empty()),
        ] {
            if empty {
                p.push(format!("{axis}: at least one entry is needed"));
            }
        }
        for (label, b) in &self.budgets {
            p.extend(
                b.problems()
                    .into_iter()
                    .map(|m| format!("budgets.{label}: {m}")),
            );
            // Runs compared at equal compute must convert hours with one shared reference.
            if b.measure_throughput {
                p.push(format!(
                    "budgets.{label}: measure_throughput would give each run its own reference; \
                     measure once with `syllabus throughput` and set throughput_file"
                ));
            }
        }
        p
    }

    /// This sweep's directory.
    pub fn dir(&self) -> PathBuf {
        self.out_dir.join(&self.name)
    }

    /// Every grid point (model x budget x policy x seed), each config validated; all
    /// problems are reported together.
    /// Every run of the grid, its config validated with the architectures of `models`.
    pub fn expand(
        &self,
        base: &toml::Table,
        models: &ModelRegistry,
    ) -> Result<Vec<RunSpec>, SweepError> {
        let mut runs = Vec::new();
        let mut problems = Vec::new();
        for (model, m) in &self.models {
            for (budget, b) in &self.budgets {
                for (policy, pol) in &self.policies {
                    for &seed in &self.seeds {
                        let label = format!("{model}-{budget}-{policy}-s{seed}");
                        let table = self.run_table(base, &label, b, pol, seed)?;
                        let text = toml::to_string(&table).map_err(|e| SweepError::Spec {
                            path: self.base.clone(),
                            message: e.to_string(),
                        })?;
                        match Config::from_toml_str_with(&text, &label, &m.set, models) {
                            Ok(config) => runs.push(RunSpec {
                                label,
                                model: model.clone(),
                                budget: budget.clone(),
                                policy: policy.clone(),
                                seed,
                                config,
                            }),
                            Err(e) => problems.push(e.to_string()),
                        }
                    }
                }
            }
        }
        match problems.is_empty() {
            true => Ok(runs),
            false => Err(SweepError::Runs(problems.join("\n"))),
        }
    }

    fn run_table(
        &self,
        base: &toml::Table,
        label: &str,
        budget: &BudgetConfig,
        policy: &PolicyAxis,
        seed: u64,
    ) -> Result<toml::Table, SweepError> {
        let mut t = base.clone();
        let run_dir = self.dir().join("runs").join(label);
        let run = table_mut(&mut t, "run");
        run.insert("name".into(), label.into());
        run.insert("out_dir".into(), run_dir.display().to_string().into());
        run.insert("seed".into(), toml::Value::Integer(seed as i64));
        let budget = toml::Value::try_from(budget).map_err(|e| SweepError::Spec {
            path: self.base.clone(),
            message: e.to_string(),
        })?;
        t.insert("budget".into(), budget);
        let mut sampling = toml::Table::new();
        sampling.insert("policy".into(), policy.policy.clone().into());
        if !policy.params.is_empty() {
            sampling.insert(policy.policy.clone(), policy.params.clone().into());
        }
        t.insert("sampling".into(), sampling.into());
        if self.eval_points > 0 {
            let eval = table_mut(&mut t, "eval");
            eval.insert(
                "points".into(),
                toml::Value::Integer(self.eval_points as i64),
            );
        }
        Ok(t)
    }
}

/// The sub-table `key` of `t`, created if absent (replaced if it is not a table).
fn table_mut<'a>(t: &'a mut toml::Table, key: &str) -> &'a mut toml::Table {
    let entry = t
        .entry(key)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if !entry.is_table() {
        *entry = toml::Value::Table(toml::Table::new());
    }
    match entry {
        toml::Value::Table(inner) => inner,
        _ => unreachable!("just made a table"),
    }
}
