//! End-to-end check of `MetricsLogger` output, parsed independently of the
//! crates that wrote it: our own TFRecord reader (with CRC32C verification)
//! and a minimal protobuf wire decoder.

use std::path::{Path, PathBuf};

use syllabus::logging::{Histogram, LoggerOptions, MetricsLogger, MetricsSink};

// ---------- TFRecord framing ----------

/// CRC32C (Castagnoli), reflected polynomial 0x82F63B78, bitwise.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c(data);
    // TFRecord masking: rotate right by 15, add a constant.
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Splits a TFRecord file into payloads, verifying both CRCs of every record.
fn read_records(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut records = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let len_bytes = &bytes[pos..pos + 8];
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap()) as usize;
        let len_crc = u32::from_le_bytes(bytes[pos + 8..pos + 12].try_into().unwrap());
        assert_eq!(len_crc, masked_crc(len_bytes), "length CRC at offset {pos}");
        let payload = &bytes[pos + 12..pos + 12 + len];
        let data_crc =
            u32::from_le_bytes(bytes[pos + 12 + len..pos + 16 + len].try_into().unwrap());
        assert_eq!(data_crc, masked_crc(payload), "payload CRC at offset {pos}");
        records.push(payload.to_vec());
        pos += 16 + len;
    }
    assert_eq!(pos, bytes.len(), "trailing garbage");
    records
}

// ---------- protobuf wire format ----------

#[derive(Debug, Clone)]
enum Field {
    Varint(u64),
    Fixed64(u64),
    Bytes(Vec<u8>),
    Fixed32(u32),
}

fn read_varint(buf: &[u8], pos: &mut usize) -> u64 {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = buf[*pos];
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return value;
        }
    }
    panic!("varint too long");
}

/// Decodes one message level into (field number, value) pairs, in order.
fn decode(buf: &[u8]) -> Vec<(u64, Field)> {
    let mut fields = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let key = read_varint(buf, &mut pos);
        let field = match key & 7 {
            0 => Field::Varint(read_varint(buf, &mut pos)),
            1 => {
                pos += 8;
                Field::Fixed64(u64::from_le_bytes(buf[pos - 8..pos].try_into().unwrap()))
            }
            2 => {
                let len = read_varint(buf, &mut pos) as usize;
                pos += len;
                Field::Bytes(buf[pos - len..pos].to_vec())
            }
            5 => {
                pos += 4;
                Field::Fixed32(u32::from_le_bytes(buf[pos - 4..pos].try_into().unwrap()))
            }
            wire => panic!("unsupported wire type {wire}"),
        };
        fields.push((key >> 3, field));
    }
    fields
}

fn get(fields: &[(u64, Field)], number: u64) -> Option<&Field> {
    fields.iter().find(|(n, _)| *n == number).map(|(_, f)| f)
}

fn get_all(fields: &[(u64, Field)], number: u64) -> Vec<&Field> {
    fields
        .iter()
        .filter(|(n, _)| *n == number)
        .map(|(_, f)| f)
        .collect()
}

fn bytes(field: Option<&Field>) -> &[u8] {
    match field {
        Some(Field::Bytes(b)) => b,
        other => panic!("expected bytes, got {other:?}"),
    }
}

fn string(field: Option<&Field>) -> String {
    String::from_utf8(bytes(field).to_vec()).unwrap()
}

fn double(field: Option<&Field>) -> f64 {
    match field {
        Some(Field::Fixed64(v)) => f64::from_bits(*v),
        None => 0.0, // proto3 default
        other => panic!("expected double, got {other:?}"),
    }
}

// ---------- Event model ----------

#[derive(Debug)]
struct Event {
    wall_time: f64,
    step: i64,
    file_version: Option<String>,
    /// Summary.Value entries, each decoded one level.
    values: Vec<Vec<(u64, Field)>>,
}

fn parse_event(payload: &[u8]) -> Event {
    let fields = decode(payload);
    let step = match get(&fields, 2) {
        Some(Field::Varint(v)) => *v as i64,
        None => 0,
        other => panic!("bad step {other:?}"),
    };
    let values = match get(&fields, 5) {
        Some(f) => get_all(&decode(bytes(Some(f))), 1)
            .into_iter()
            .map(|v| decode(bytes(Some(v))))
            .collect(),
        None => Vec::new(),
    };
    Event {
        wall_time: double(get(&fields, 1)),
        step,
        file_version: get(&fields, 3).map(|f| string(Some(f))),
        values,
    }
}

fn event_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("events.out.tfevents.")
        })
        .collect();
    files.sort();
    files
}

fn read_events(path: &Path) -> Vec<Event> {
    let data = std::fs::read(path).unwrap();
    read_records(&data).iter().map(|r| parse_event(r)).collect()
}

// ---------- tests ----------

const LOSSES: [(u64, f64); 4] = [(0, 10.5), (10, 7.25), (20, 5.125), (30, 4.0625)];

fn write_sample_run(dir: &Path) {
    let mut logger = MetricsLogger::open(
        dir,
        LoggerOptions {
            tensorboard: true,
            jsonl: true,
            ..Default::default()
        },
    )
    .unwrap();
    for (step, loss) in LOSSES {
        logger.scalar("train/loss", loss, step);
    }
    logger.scalar("train/nan", f64::NAN, 30);
    logger.text("config", "| key | value |\n|---|---|\n| lr | 6e-4 |", 0);
    let values: Vec<f32> = (0..1000).map(|i| i as f32 / 100.0).collect();
    let hist = Histogram::from_values(&values, 20).unwrap();
    logger.histogram("weights/wte", &hist, 30);
    logger.flush();
    assert!(logger.health().is_none());
    logger.close().unwrap();
}

#[test]
fn event_file_contents_decode_independently() {
    let dir = tempfile::tempdir().unwrap();
    write_sample_run(dir.path());
    let files = event_files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let events = read_events(&files[0]);

    assert_eq!(events[0].file_version.as_deref(), Some("brain.Event:2"));
    assert!(events[0].wall_time > 1.6e9, "wall_time is unix seconds");
    let summaries = &events[1..];
    assert!(summaries
        .iter()
        .all(|e| e.values.len() == 1 && e.wall_time > 1.6e9));

    // Scalars: simple_value (field 2, float).
    let losses: Vec<(i64, f32)> = summaries
        .iter()
        .filter(|e| string(get(&e.values[0], 1)) == "train/loss")
        .map(|e| match get(&e.values[0], 2) {
            Some(Field::Fixed32(bits)) => (e.step, f32::from_bits(*bits)),
            other => panic!("no simple_value: {other:?}"),
        })
        .collect();
    let expected: Vec<(i64, f32)> = LOSSES.iter().map(|&(s, v)| (s as i64, v as f32)).collect();
    assert_eq!(losses, expected);
    let nan = find_value(summaries, "train/nan");
    assert!(matches!(get(nan, 2), Some(Field::Fixed32(b)) if f32::from_bits(*b).is_nan()));

    // Text: metadata.plugin_data.plugin_name == "text"; tensor DT_STRING (7).
    let text = find_value(summaries, "config");
    let metadata = decode(bytes(get(text, 9)));
    let plugin_data = decode(bytes(get(&metadata, 1)));
    assert_eq!(string(get(&plugin_data, 1)), "text");
    let tensor = decode(bytes(get(text, 8)));
    assert!(
        matches!(get(&tensor, 1), Some(Field::Varint(7))),
        "dtype DT_STRING"
    );
    assert_eq!(
        string(get(&tensor, 8)),
        "| key | value |\n|---|---|\n| lr | 6e-4 |"
    );

    // Histogram: HistogramProto (field 5) with num (field 3, double) == 1000.
    let histo = decode(bytes(get(find_value(summaries, "weights/wte"), 5)));
    assert_eq!(double(get(&histo, 3)), 1000.0);
    assert_eq!(double(get(&histo, 1)), 0.0);
    assert!((double(get(&histo, 2)) - 9.99).abs() < 1e-5);
}

fn find_value<'a>(events: &'a [Event], tag: &str) -> &'a [(u64, Field)] {
    events
        .iter()
        .flat_map(|e| e.values.iter())
        .find(|v| string(get(v, 1)) == tag)
        .unwrap_or_else(|| panic!("tag {tag} not found"))
}

#[test]
fn jsonl_lines_match() {
    let dir = tempfile::tempdir().unwrap();
    write_sample_run(dir.path());
    let text = std::fs::read_to_string(dir.path().join("metrics.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), LOSSES.len() + 3);
    for (line, (step, loss)) in lines.iter().zip(LOSSES) {
        assert_eq!(line["tag"], "train/loss");
        assert_eq!(line["step"], step);
        assert_eq!(line["value"], loss);
        assert!(line["wall_time"].as_f64().unwrap() > 1.6e9);
    }
    let nan = &lines[LOSSES.len()];
    assert_eq!(
        (nan["value"].clone(), nan["nonfinite"].clone()),
        (serde_json::Value::Null, "nan".into())
    );
    assert_eq!(
        lines[LOSSES.len() + 1]["text"]
            .as_str()
            .unwrap()
            .lines()
            .count(),
        3
    );
    let hist = &lines[LOSSES.len() + 2]["histogram"];
    assert_eq!(hist["num"], 1000.0);
    assert!((hist["mean"].as_f64().unwrap() - 4.995).abs() < 1e-6);
}

#[test]
fn two_loggers_same_dir_same_second_get_distinct_files() {
    let dir = tempfile::tempdir().unwrap();
    let opts = LoggerOptions {
        tensorboard: true,
        jsonl: false,
        ..Default::default()
    };
    let mut a = MetricsLogger::open(dir.path(), opts).unwrap();
    let mut b = MetricsLogger::open(dir.path(), opts).unwrap();
    a.scalar("a", 1.0, 1);
    b.scalar("b", 2.0, 1);
    a.close().unwrap();
    b.close().unwrap();
    let files = event_files(dir.path());
    assert_eq!(files.len(), 2, "{files:?}");
    for file in &files {
        let events = read_events(file);
        assert_eq!(events.len(), 2, "header + one scalar in {}", file.display());
    }
    assert!(!dir.path().join("metrics.jsonl").exists());
}

#[test]
fn open_fails_cleanly_when_run_dir_is_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not_a_dir");
    std::fs::write(&blocker, b"x").unwrap();
    let err = MetricsLogger::open(&blocker.join("run"), LoggerOptions::default());
    assert!(err.is_err());
}

#[test]
fn removed_run_dir_does_not_panic_caller() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let mut logger = MetricsLogger::open(&run, LoggerOptions::default()).unwrap();
    logger.scalar("x", 1.0, 0);
    std::fs::remove_dir_all(&run).unwrap();
    for step in 1..2000 {
        logger.scalar("x", step as f64, step);
    }
    logger.flush();
    // On Unix, writes to unlinked files succeed, so this may or may not be
    // reported; the requirement is only that nothing panics here.
    let _ = logger.health();
    let _ = logger.close();
}

/// Writes hitting ENOSPC (via a `metrics.jsonl` symlink to /dev/full) must
/// be reported through health()/close(), not as a panic in the caller.
#[cfg(target_os = "linux")]
#[test]
fn write_failure_is_reported_by_health() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/dev/full", dir.path().join("metrics.jsonl")).unwrap();
    let mut logger = MetricsLogger::open(dir.path(), LoggerOptions::default()).unwrap();
    for step in 0..100 {
        logger.scalar("train/loss", 1.0, step);
    }
    assert!(!logger.flush_and_wait(std::time::Duration::from_secs(10)));
    let health = logger.health().expect("failure must be reported");
    assert!(health.contains("I/O error"), "{health}");
    // After a failure, further logging is a silent no-op.
    for step in 100..200 {
        logger.scalar("train/loss", 1.0, step);
        logger.text("t", "x", step);
    }
    let err = logger.close().unwrap_err();
    assert!(err.to_string().contains("I/O error"), "{err}");
}

#[test]
fn flush_makes_data_visible_while_running() {
    let dir = tempfile::tempdir().unwrap();
    let mut logger = MetricsLogger::open(dir.path(), LoggerOptions::default()).unwrap();
    logger.scalar("train/loss", 3.5, 7);
    assert!(logger.flush_and_wait(std::time::Duration::from_secs(10)));
    let events = read_events(&event_files(dir.path())[0]);
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].step, 7);
    let jsonl = std::fs::read_to_string(dir.path().join("metrics.jsonl")).unwrap();
    assert_eq!(jsonl.lines().count(), 1);
    drop(logger); // Drop without close must also join cleanly.
}

#[test]
fn hparams_are_written_in_the_plugins_layout() {
    use syllabus::logging::{HParams, SessionStatus};
    let dir = tempfile::tempdir().unwrap();
    let leaves = vec![
        ("flag".to_string(), toml::Value::Boolean(true)),
        ("optim.lr".to_string(), toml::Value::Float(3e-4)),
        (
            "sampling.policy".to_string(),
            toml::Value::String("lfr".into()),
        ),
    ];
    let mut logger = MetricsLogger::open(dir.path(), LoggerOptions::default()).unwrap();
    logger.hparams(HParams::from_toml_leaves(leaves, &["eval/loss"]), 0);
    logger.session_end(SessionStatus::Success, 7);
    logger.close().unwrap();
    let events = read_events(&event_files(dir.path())[0]);

    // Summary.Value metadata (9) -> plugin_data (1) -> name (1) "hparams", content (2).
    let content = |tag: &str| {
        let metadata = decode(bytes(get(find_value(&events, tag), 9)));
        let plugin = decode(bytes(get(&metadata, 1)));
        assert_eq!(string(get(&plugin, 1)), "hparams", "{tag}");
        decode(bytes(get(&plugin, 2)))
    };
    // HParamsPluginData.experiment (2): hparam_infos (4) with name (1), metric_infos (5).
    let experiment = decode(bytes(get(&content("_hparams_/experiment"), 2)));
    let mut names: Vec<String> = get_all(&experiment, 4)
        .into_iter()
        .map(|info| string(get(&decode(bytes(Some(info))), 1)))
        .collect();
    names.sort();
    assert_eq!(names, ["flag", "optim.lr", "sampling.policy"]);
    let metric = decode(bytes(get(&experiment, 5)));
    assert_eq!(string(get(&decode(bytes(get(&metric, 1))), 2)), "eval/loss");

    // .session_start_info (3): hparams map (1) of key (1) -> google.protobuf.Value (2), whose
    // number_value is field 2, string_value 3, bool_value 4.
    let start = decode(bytes(get(&content("_hparams_/session_start_info"), 3)));
    let value_of = |key: &str| {
        let entry = get_all(&start, 1)
            .into_iter()
            .map(|e| decode(bytes(Some(e))))
            .find(|e| string(get(e, 1)) == key)
            .unwrap_or_else(|| panic!("{key} missing"));
        decode(bytes(get(&entry, 2)))
    };
    assert_eq!(double(get(&value_of("optim.lr"), 2)), 3e-4);
    assert_eq!(string(get(&value_of("sampling.policy"), 3)), "lfr");
    assert!(matches!(get(&value_of("flag"), 4), Some(Field::Varint(1))));

    // .session_end_info (4): status (1) STATUS_SUCCESS = 1, end_time_secs (2), at the last step.
    let end = decode(bytes(get(&content("_hparams_/session_end_info"), 4)));
    assert!(matches!(get(&end, 1), Some(Field::Varint(1))), "{end:?}");
    let (event, _) = events
        .iter()
        .flat_map(|e| e.values.iter().map(move |v| (e, v)))
        .find(|(_, v)| string(get(v, 1)) == "_hparams_/session_end_info")
        .unwrap();
    assert_eq!(event.step, 7);
    assert_eq!(
        double(get(&end, 2)),
        event.wall_time,
        "end time is the event's"
    );
}
