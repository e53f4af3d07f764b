//! Semantic checks, run once after parsing. Every problem is collected with its field path so
//! the user fixes them all in one go.

use super::{Config, ScheduleKind};
use crate::model::Architecture;

impl Config {
    /// Every problem of a config whose architecture resolved to `arch`; `vocab` is the
    /// tokenizer's vocabulary size, or why it could not be read.
    pub(super) fn problems(
        &self,
        arch: &dyn Architecture,
        vocab: &Result<usize, String>,
    ) -> Vec<String> {
        let mut p = Vec::new();
        self.check_model(arch, &mut p);
        match vocab {
            Ok(v) if arch.vocab_size() < *v => p.push(format!(
                "the model's vocab_size ({}) is smaller than the tokenizer's vocabulary ({v}{})",
                arch.vocab_size(),
                match &self.data.tokenizer {
                    Some(t) => format!(", data.tokenizer = {}", t.display()),
                    None => ", GPT-2's BPE".into(),
                }
            )),
            Ok(_) => {}
            Err(e) => p.push(e.clone()),
        }
        if let Some(ctx) = self.model.context(arch) {
            self.check_resources(arch, ctx, &mut p);
            self.check_eval_stride(ctx, &mut p);
        }
        p.extend(self.problems_without_model());
        p
    }

    /// The problems found without the architecture (reported with the model's own).
    pub(super) fn problems_without_model(&self) -> Vec<String> {
        let mut p = Vec::new();
        self.check_run(&mut p);
        self.check_data(&mut p);
        self.check_optim(&mut p);
        self.check_train(&mut p);
        for name in self.sampling.params.keys() {
            if *name != self.sampling.policy {
                p.push(format!(
                    "[sampling.{name}] is given but sampling.policy = {:?}: the table would be \
                     ignored; remove it or select policy = {name:?}",
                    self.sampling.policy
                ));
            }
        }
        p.extend(self.budget.problems());
        p.extend(self.perf.problems());
        self.check_eval_suite(&mut p);
        p
    }

    fn check_eval_suite(&self, p: &mut Vec<String>) {
        let e = &self.eval;
        if let Err(err) = crate::eval::TaskSelection::parse(&e.tasks) {
            p.push(format!("eval.tasks: {err}"));
        }
        if e.stride == Some(0) {
            p.push("eval.stride must be > 0".into());
        }
    }

    fn check_eval_stride(&self, ctx: usize, p: &mut Vec<String>) {
        match self.eval.stride {
            Some(s) if s > ctx => p.push(format!(
                "eval.stride ({s}) is longer than the context length ({ctx})"
            )),
            _ => {}
        }
    }

    fn check_run(&self, p: &mut Vec<String>) {
        if crate::device::parse_device(&self.run.device).is_none() {
            p.push(format!(
                "run.device must be \"cpu\", \"cuda\" or \"cuda:N\", got {:?}",
                self.run.device
            ));
        }
        match &self.run.out_dir {
            Some(dir) if dir.as_os_str().is_empty() => p.push(
                "run.out_dir is empty: give a directory (an empty one would put the run's files \
                 in the current directory)"
                    .into(),
            ),
            Some(_) => {}
            None if !crate::fsutil::is_safe_name(&self.run.name) => p.push(format!(
                "run.name {:?} names the run directory runs/<name>: use letters, digits, '.', \
                 '_', '-' only (not starting with '.'), or set run.out_dir",
                self.run.name
            )),
            None => {}
        }
    }

    fn check_data(&self, p: &mut Vec<String>) {
        if self.data.prepared_dir.as_os_str().is_empty() {
            p.push("data.prepared_dir is empty: give the prepared data's directory".into());
        }
        if self.data.text_column.is_empty() {
            p.push("data.text_column is empty: name the parquet column holding the text".into());
        }
        if self.data.source_column.as_deref() == Some("") {
            p.push("data.source_column is empty: name a parquet column, or leave it out".into());
        }
        let f = self.data.val_fraction;
        if !(0.0..1.0).contains(&f) {
            p.push(format!("data.val_fraction must be in [0, 1), got {f}"));
        } else if f == 0.0 && self.data.val_inputs.is_empty() && !self.data.inputs.is_empty() {
            p.push(
                "data.val_fraction is 0 and data.val_inputs is empty: no validation data".into(),
            );
        }
    }

    fn check_model(&self, arch: &dyn Architecture, p: &mut Vec<String>) {
        if let Some(dir) = &self.model.init_from {
            if arch.name() != "gpt2" {
                p.push(format!(
                    "model.init_from loads Hugging Face GPT-2 weights; model.arch = {:?}",
                    arch.name()
                ));
            }
            for file in [crate::model::hf::HF_CONFIG, crate::model::hf::HF_WEIGHTS] {
                if !dir.join(file).is_file() {
                    p.push(format!(
                        "model.init_from: {} has no {file} (expected a Hugging Face GPT-2 \
                         directory)",
                        dir.display()
                    ));
                }
            }
        }
        match (self.model.context(arch), arch.max_context()) {
            (None, _) => p.push(format!(
                "model.context_length is required for arch = {:?} (it has no maximum context)",
                arch.name()
            )),
            (Some(0), _) => p.push("model.context_length must be > 0".into()),
            (Some(ctx), Some(max)) if ctx > max => p.push(format!(
                "model.context_length ({ctx}) is longer than the model's maximum context ({max})"
            )),
            _ => {}
        }
    }

    fn check_optim(&self, p: &mut Vec<String>) {
        let o = &self.optim;
        if !(o.lr.is_finite() && o.lr > 0.0) {
            p.push(format!("optim.lr must be a positive number, got {}", o.lr));
        }
        for (name, b) in [("beta1", o.beta1), ("beta2", o.beta2)] {
            if !(0.0..1.0).contains(&b) {
                p.push(format!("optim.{name} must be in [0, 1), got {b}"));
            }
        }
        if o.eps.is_nan() || o.eps <= 0.0 {
            p.push(format!("optim.eps must be > 0, got {}", o.eps));
        }
        if o.weight_decay.is_nan() || o.weight_decay < 0.0 {
            p.push(format!(
                "optim.weight_decay must be >= 0, got {}",
                o.weight_decay
            ));
        }
        if o.grad_clip.is_nan() || o.grad_clip < 0.0 {
            p.push(format!(
                "optim.grad_clip must be >= 0 (0 = off), got {}",
                o.grad_clip
            ));
        }
        let s = &self.schedule;
        if !(0.0..=1.0).contains(&s.min_lr_ratio) {
            p.push(format!(
                "schedule.min_lr_ratio must be in [0, 1], got {}",
                s.min_lr_ratio
            ));
        }
        if s.kind == ScheduleKind::Wsd && !(s.decay_fraction > 0.0 && s.decay_fraction <= 1.0) {
            p.push(format!(
                "schedule.decay_fraction must be in (0, 1], got {}",
                s.decay_fraction
            ));
        }
        // Other budgets become steps at the start of the run, which checks them then.
        if let Some(steps) = self.budget.steps.filter(|&n| s.warmup_steps > n) {
            p.push(format!(
                "schedule.warmup_steps ({}) exceeds budget.steps ({steps})",
                s.warmup_steps
            ));
        }
    }

    fn check_train(&self, p: &mut Vec<String>) {
        let t = &self.train;
        for (name, v) in [
            ("train.batch_size", t.batch_size),
            ("train.grad_accum", t.grad_accum),
            (
                "train.max_consecutive_skips",
                t.max_consecutive_skips as usize,
            ),
            ("eval.batch_size", self.eval.batch_size),
            ("checkpoint.keep_last", self.checkpoint.keep_last),
            ("logging.log_every", self.logging.log_every as usize),
        ] {
            if v == 0 {
                p.push(format!("{name} must be > 0"));
            }
        }
        let l = &self.ledger;
        if !(l.ema_alpha > 0.0 && l.ema_alpha <= 1.0) {
            p.push(format!(
                "ledger.ema_alpha must be in (0, 1], got {}",
                l.ema_alpha
            ));
        }
        if l.forget_tolerance.is_nan()
            || l.forget_tolerance < 0.0
            || l.forget_tolerance.is_infinite()
        {
            p.push(format!(
                "ledger.forget_tolerance must be >= 0 (nats), got {}",
                l.forget_tolerance
            ));
        }
        if !(self.eval.temperature > 0.0 && self.eval.temperature.is_finite()) {
            p.push(format!(
                "eval.temperature must be > 0, got {}",
                self.eval.temperature
            ));
        }
    }
}

impl super::DataConfig {
    /// The vocabulary size of the tokenizer the data is prepared with: `tokenizer`'s, or
    /// GPT-2's; or why the file could not be read.
    pub(super) fn tokenizer_vocab(&self) -> Result<usize, String> {
        match &self.tokenizer {
            None => Ok(crate::data::GPT2_VOCAB_SIZE),
            Some(path) => crate::data::Tokenizer::from_file(path)
                .map(|t| t.vocab_size())
                .map_err(|e| format!("data.tokenizer: {e}")),
        }
    }
}
