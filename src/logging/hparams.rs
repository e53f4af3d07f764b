//! TensorBoard's HParams plugin: a run's hyperparameters and the metrics to compare them by, so
//! the HParams dashboard lists runs (every run of a sweep directory) side by side. The layout is
//! the plugin's own (`tensorboard/plugins/hparams/summary.py`): an `experiment` summary naming
//! the hyperparameters and metrics, a `session_start_info` summary with this run's values, and
//! at the end a `session_end_info` summary with the session's status, each a summary value whose
//! plugin metadata carries an `HParamsPluginData` message.
//!
//! TensorBoard keeps the first summary metadata of each tag in a run directory (later ones are
//! ignored, as every restart of a job writes a new event file), so each summary is written once
//! per run: the start at step 0 (not again on resume), the end only when the run has finished
//! (`STATUS_SUCCESS`). A run stopped early (`--stop-after`, killed, an error) writes no end: the
//! dashboard shows its status as unknown until a resumed session finishes it.

use protobuf::well_known_types::Value;
use protobuf::{Message, RepeatedField};
use tensorboard_proto::api::{DataType, Experiment, HParamInfo, MetricInfo, MetricName, Status};
use tensorboard_proto::plugin_hparams::{HParamsPluginData, SessionEndInfo, SessionStartInfo};
use tensorboard_proto::summary::{Summary, SummaryMetadata, Summary_Value};

const PLUGIN: &str = "hparams";
pub const EXPERIMENT_TAG: &str = "_hparams_/experiment";
pub const SESSION_START_TAG: &str = "_hparams_/session_start_info";
pub const SESSION_END_TAG: &str = "_hparams_/session_end_info";

/// How a training session ended, as the HParams dashboard shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionStatus {
    /// The run finished its budget.
    Success,
    /// The run ended with an error it cannot continue from.
    Failure,
}

/// The `session_end_info` summary: `status` and `end_time` (Unix seconds).
pub fn session_end(
    status: SessionStatus,
    end_time: f64,
) -> Result<Summary, protobuf::ProtobufError> {
    let mut end = SessionEndInfo::new();
    end.set_status(match status {
        SessionStatus::Success => Status::STATUS_SUCCESS,
        SessionStatus::Failure => Status::STATUS_FAILURE,
    });
    end.set_end_time_secs(end_time);
    let mut data = HParamsPluginData::new();
    data.set_session_end_info(end);
    summary(SESSION_END_TAG, &data)
}

/// One hyperparameter's value.
#[derive(Clone, Debug, PartialEq)]
pub enum HParam {
    Number(f64),
    Bool(bool),
    Text(String),
}

/// A run's hyperparameters (by dotted config key) and the scalar tags to compare runs by.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HParams {
    pub values: Vec<(String, HParam)>,
    pub metrics: Vec<String>,
}

impl HParams {
    /// Hyperparameters from `(dotted key, TOML value)` leaves (a config's); arrays and dates
    /// become their TOML text.
    pub fn from_toml_leaves(leaves: Vec<(String, toml::Value)>, metrics: &[&str]) -> Self {
        let values = leaves
            .into_iter()
            .map(|(key, value)| {
                let value = match value {
                    toml::Value::Integer(i) => HParam::Number(i as f64),
                    toml::Value::Float(f) => HParam::Number(f),
                    toml::Value::Boolean(b) => HParam::Bool(b),
                    toml::Value::String(s) => HParam::Text(s),
                    other => HParam::Text(other.to_string()),
                };
                (key, value)
            })
            .collect();
        Self {
            values,
            metrics: metrics.iter().map(|m| m.to_string()).collect(),
        }
    }

    /// The two summaries TensorBoard reads: the experiment (names and types) and this run's
    /// session start (values, `start_time` in Unix seconds).
    pub fn summaries(&self, start_time: f64) -> Result<[Summary; 2], protobuf::ProtobufError> {
        let mut experiment = Experiment::new();
        let infos = self
            .values
            .iter()
            .map(|(name, v)| hparam_info(name, v))
            .collect();
        experiment.set_hparam_infos(RepeatedField::from_vec(infos));
        let metrics = self.metrics.iter().map(|m| metric_info(m)).collect();
        experiment.set_metric_infos(RepeatedField::from_vec(metrics));
        let mut data = HParamsPluginData::new();
        data.set_experiment(experiment);
        let experiment = summary(EXPERIMENT_TAG, &data)?;

        let mut start = SessionStartInfo::new();
        start.set_start_time_secs(start_time);
        let values = self.values.iter().map(|(k, v)| (k.clone(), proto_value(v)));
        start.set_hparams(values.collect());
        let mut data = HParamsPluginData::new();
        data.set_session_start_info(start);
        Ok([experiment, summary(SESSION_START_TAG, &data)?])
    }
}

fn hparam_info(name: &str, value: &HParam) -> HParamInfo {
    let mut info = HParamInfo::new();
    info.set_name(name.to_string());
    info.set_field_type(match value {
        HParam::Number(_) => DataType::DATA_TYPE_FLOAT64,
        HParam::Bool(_) => DataType::DATA_TYPE_BOOL,
        HParam::Text(_) => DataType::DATA_TYPE_STRING,
    });
    info
}

fn metric_info(tag: &str) -> MetricInfo {
    let mut name = MetricName::new();
    name.set_tag(tag.to_string());
    let mut info = MetricInfo::new();
    info.set_name(name);
    info
}

fn proto_value(v: &HParam) -> Value {
    let mut value = Value::new();
    match v {
        HParam::Number(n) => value.set_number_value(*n),
        HParam::Bool(b) => value.set_bool_value(*b),
        HParam::Text(t) => value.set_string_value(t.clone()),
    }
    value
}

/// A summary value carrying `data` as the hparams plugin's content (version 0).
fn summary(tag: &str, data: &HParamsPluginData) -> Result<Summary, protobuf::ProtobufError> {
    let mut metadata = SummaryMetadata::new();
    let plugin = metadata.mut_plugin_data();
    plugin.set_plugin_name(PLUGIN.to_string());
    plugin.set_content(data.write_to_bytes()?);
    let mut value = Summary_Value::new();
    value.set_tag(tag.to_string());
    value.set_metadata(metadata);
    let mut summary = Summary::new();
    summary.set_value(RepeatedField::from_vec(vec![value]));
    Ok(summary)
}
