//! Semantic checks, run once after parsing. Every problem is collected with its field path so
//! the user fixes them all in one go.

use super::{Config, ScheduleKind};
use crate::model::GptConfig;

/// Smallest vocabulary that can hold every GPT-2 BPE id (50256 = `<|endoftext|>`).
const MIN_VOCAB: usize = 50257;

impl Config {
    pub(super) fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        self.check_run(&mut p);
        self.check_data(&mut p);
        match self.model.resolve() {
            Ok(gpt) => {
                self.check_model(&gpt, &mut p);
                self.check_resources(&gpt, &mut p);
            }
            Err(missing) => p.extend(missing),
        }
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
        let ctx = self.model.resolve().map(|g| self.model.context(&g)).ok();
        match (e.stride, ctx) {
            (Some(0), _) => p.push("eval.stride must be > 0".into()),
            (Some(s), Some(ctx)) if s > ctx => p.push(format!(
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
        let f = self.data.val_fraction;
        if !(0.0..1.0).contains(&f) {
            p.push(format!("data.val_fraction must be in [0, 1), got {f}"));
        } else if f == 0.0 && self.data.val_inputs.is_empty() && !self.data.inputs.is_empty() {
            p.push(
                "data.val_fraction is 0 and data.val_inputs is empty: no validation data".into(),
            );
        }
    }

    fn check_model(&self, gpt: &GptConfig, p: &mut Vec<String>) {
        if let Some(dir) = &self.model.init_from {
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
        let zero = [
            ("vocab_size", gpt.vocab_size),
            ("n_positions", gpt.n_positions),
            ("n_layer", gpt.n_layer),
            ("n_head", gpt.n_head),
            ("d_model", gpt.d_model),
        ];
        for (field, v) in zero {
            if v == 0 {
                p.push(format!("model.{field} must be > 0"));
            }
        }
        if gpt.n_head > 0 && gpt.d_model % gpt.n_head != 0 {
            p.push(format!(
                "model.n_head must divide model.d_model ({} % {} != 0)",
                gpt.d_model, gpt.n_head
            ));
        }
        if gpt.vocab_size < MIN_VOCAB {
            p.push(format!(
                "model.vocab_size ({}) is smaller than the GPT-2 tokenizer's vocabulary ({MIN_VOCAB})",
                gpt.vocab_size
            ));
        }
        let ctx = self.model.context(gpt);
        if ctx == 0 {
            p.push("model.context_length must be > 0".into());
        } else if ctx > gpt.n_positions {
            p.push(format!(
                "model.context_length ({ctx}) is longer than the model's n_positions ({})",
                gpt.n_positions
            ));
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
