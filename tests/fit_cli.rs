//! `syllabus fit` end to end: JSON and text output, and the messages for bad tables.

mod common;

use common::syllabus;

use std::path::Path;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Noiseless L = 1.69 + 406.4/N^0.34 + 410.7/D^0.28 on 3 sizes x 4 token counts, in the
/// sweep's results.csv layout (two policies with different losses for the compute form).
fn write_results(dir: &Path) -> std::path::PathBuf {
    let mut csv = String::from("num_params,tokens_seen,loss,seed,policy,theoretical_hours,run\n");
    for (k, n) in [1e7f64, 1e8, 1e9].iter().enumerate() {
        for (j, d) in [1e9f64, 3e9, 1e10, 3e10].iter().enumerate() {
            let loss = 1.69 + 406.4 / n.powf(0.34) + 410.7 / d.powf(0.28);
            let hours = (j + 1) as f64 * 2.0;
            csv.push_str(&format!("{n},{d},{loss},0,base,{hours},r{k}\n"));
            let steeper = loss * (hours / 8.0).powf(-0.02);
            csv.push_str(&format!("{n},{d},{steeper},0,lfr,{hours},l{k}\n"));
        }
    }
    let path = dir.join("results.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

#[test]
fn json_output_has_plain_parameter_names_objective_and_are() {
    let dir = tempfile::tempdir().unwrap();
    write_results(dir.path());
    let o = syllabus(
        &[
            "fit",
            "results.csv",
            "--where",
            "policy=base",
            "--holdout",
            "0.3",
            "--json",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["form"], "chinchilla");
    assert_eq!(v["input"]["format"], "colpret");
    assert_eq!(v["input"]["rows_after_where"], 12);
    for method in ["huber", "lsq"] {
        let fit = &v[method];
        for key in ["E", "A", "B", "alpha", "beta", "objective", "are_fit"] {
            assert!(fit[key].is_number(), "{method}.{key} missing in {fit}");
        }
        // The largest size's last 30% (D >= 0.7 x 3e10) is held out and predicted well.
        assert!(fit["are_holdout"].as_f64().unwrap() < 0.01, "{fit}");
    }
    assert!((v["lsq"]["alpha"].as_f64().unwrap() - 0.34).abs() < 0.01);
    let warning = v["huber"]["warnings"][0].as_str().unwrap();
    assert!(warning.starts_with("only 3 model sizes"), "{warning}");
}

#[test]
fn compute_form_prints_groups_and_their_crossover() {
    let dir = tempfile::tempdir().unwrap();
    write_results(dir.path());
    let o = syllabus(
        &[
            "fit",
            "results.csv",
            "--form",
            "compute",
            "--x",
            "theoretical_hours",
            "--group-by",
            "policy",
            "--bootstrap",
            "50",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains("Loss vs theoretical_hours per policy"),
        "{out}"
    );
    assert!(out.contains("base vs lfr: C* ="), "{out}");
    assert!(
        out.contains("no seed column") || out.contains("only one seed"),
        "{out}"
    );
}

#[test]
fn degenerate_and_malformed_tables_fail_with_a_named_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases = [
        (
            "one_size.csv",
            "num_params,tokens_seen,loss\n1e8,1e9,3.0\n1e8,2e9,2.9\n1e8,4e9,2.8\n1e8,8e9,2.7\n1e8,1e10,2.65\n1e8,2e10,2.6\n",
            "only one model size",
        ),
        (
            "nan.csv",
            "num_params,tokens_seen,loss\n1e8,1e9,3.0\n1e9,1e9,NaN\n",
            "nan.csv: line 3, column `loss`",
        ),
        (
            "cols.csv",
            "params,tokens_seen,loss\n1e8,1e9,3.0\n",
            "found columns [params, tokens_seen, loss]",
        ),
        (
            "few.csv",
            "num_params,tokens_seen,loss\n1e8,1e9,3.0\n1e9,1e10,2.5\n",
            "too few points: 2",
        ),
    ];
    for (name, body, expected) in cases {
        std::fs::write(d.join(name), body).unwrap();
        let o = syllabus(&["fit", name], d);
        assert!(!o.status.success(), "{name} should fail");
        let err = text(&o.stderr);
        assert!(err.contains(expected), "{name}: {err}");
    }
    let o = syllabus(&["fit", "missing.csv"], d);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("missing.csv"));
    let o = syllabus(&["fit", "few.csv", "--holdout", "2", "--min-frac", "0"], d);
    let err = text(&o.stderr);
    assert!(
        err.contains("--holdout") && err.contains("--min-frac"),
        "{err}"
    );
}

#[test]
fn an_explicit_format_is_checked_against_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("opt.csv"),
        "model_name,model_size,steps,num_token,flops,ppl\nOPT,125m,2000,9.0,17.87,67.5\n",
    )
    .unwrap();
    let o = syllabus(&["fit", "opt.csv", "--format", "datablations"], d);
    let err = text(&o.stderr);
    assert!(
        err.contains("format datablations needs column(s) [num_params, token_num, loss]"),
        "{err}"
    );
    let o = syllabus(&["fit", "opt.csv", "--format", "nope"], d);
    assert!(text(&o.stderr).contains("unknown format `nope`"));
}
