//! Parsing of each supported layout on a few lines copied from the published tables.

use std::path::Path;

use super::*;

fn parse(text: &str, format: Option<Format>) -> Result<Dataset, ScalingError> {
    parse_table(Path::new("t.csv"), text.as_bytes(), format)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
}

#[test]
fn chinchilla_extracted_rows_map_to_n_d_and_flops() {
    let text = "x,y,color,Model Size,Training FLOP,hex_color,loss\n\
        154.03592,140.63364,#faebdd,6795600349.289497,9.993852799709755e+18,#faebdd,5.005581996196243\n\
        151.60375,175.51709,#f8d1b8,2979521172.1967993,9.227541223049181e+18,#f8d1b8,4.665232074214\n";
    let ds = parse(text, None).unwrap();
    assert_eq!(ds.format, Format::Chinchilla);
    assert!(ds.detected);
    let r = &ds.rows[0];
    assert_eq!(r.line, 2);
    assert!(close(r.num_params, 6795600349.289497));
    assert!(close(r.flops, 9.993852799709755e18));
    assert!(close(
        r.tokens,
        9.993852799709755e18 / (6.0 * 6795600349.289497)
    ));
    assert!(close(r.loss, 5.005581996196243));
    assert_eq!(r.run, "6795600349");
    assert_eq!(r.seed, None);
    assert_eq!(ds.rows[1].line, 3);
}

#[test]
fn datablations_rows_parse_sizes_and_recompute_flops() {
    let text = "index,data,epochs,token_num,loss,num_params,model_args,tokens_per_epoch,flops,checkpoint\n\
        0,c4,44,104857600,6.9756693840026855,2.8B,{'tensorboard': 'w7KmvQJRRvyCAsd0DkLOwg'},1250000000.0,4.878044128417969e+23,https://huggingface.co/datablations/lm1-2b8-55b-c4-repetitions\n\
        3550,c4,1,54999908352,2.5760576725006104,2.8B,{'tensorboard': 'Q6Lm5nBgRxeiKMHK6283Pw'},55000000000.0,9.30001549686946e+20,https://huggingface.co/datablations/lm1-2b8-55b-c4-repetitions\n";
    let ds = parse(text, None).unwrap();
    assert_eq!(ds.format, Format::Datablations);
    let r = &ds.rows[1];
    assert_eq!(r.num_params, 2.8e9);
    assert_eq!(r.tokens, 54999908352.0);
    assert!(close(r.flops, 6.0 * 2.8e9 * 54999908352.0));
    assert_eq!(r.run, "2.8B/c4/1");
    assert_eq!(ds.rows[0].run, "2.8B/c4/44");
    // Raw cells stay addressable for --where / --group-by.
    let epochs = ds.column("epochs").unwrap();
    assert_eq!(r.fields[epochs], "1");
}

#[test]
fn opt_rows_decode_log10_counts_and_perplexity() {
    let text = "model_name,model_size,steps,num_token,flops,ppl\n\
        OPT,125m,2000,9.0,17.8750612633917,67.52265444265277\n\
        OPT,175b,140000,11.44715803134222,23.468347330412158,9.768875130499486\n";
    let ds = parse(text, None).unwrap();
    assert_eq!(ds.format, Format::Opt);
    let r = &ds.rows[0];
    assert_eq!(r.num_params, 125e6);
    assert!(close(r.tokens, 1e9));
    assert!(close(r.flops, 10f64.powf(17.8750612633917)));
    assert!(close(r.loss, 67.52265444265277f64.ln()));
    assert_eq!(r.run, "125m");
    assert_eq!(ds.rows[1].num_params, 175e9);
    // The canonical `flops` is the decoded one, not the raw log10 cell.
    assert!(close(ds.value(r, "flops").unwrap(), r.flops));
}

#[test]
fn results_csv_is_read_as_colpret_with_seeds_runs_and_missing_flops() {
    let text = "model_name,model_type,scaled_set,tokens_seen,flops,num_params,data,checkpoint,seed,epochs,arch,loss,policy,compute_class,theoretical_hours,wall_hours,run\n\
        gpt-s,gpt2,syl,1000000,,124000000,books,100,1,1,dec,5.5,lfr,6h,0.5,0.7,lfr-6h-s1\n\
        gpt-s,gpt2,syl,2000000,1.5e15,124000000,books,200,1,1,dec,5.1,lfr,6h,1.0,1.3,lfr-6h-s1\n";
    let ds = parse(text, None).unwrap();
    assert_eq!(ds.format, Format::Colpret);
    let r = &ds.rows[0];
    assert!(close(r.flops, 6.0 * 124e6 * 1e6), "missing flops = 6ND");
    assert_eq!(ds.rows[1].flops, 1.5e15);
    assert_eq!(r.seed.as_deref(), Some("1"));
    assert_eq!(r.run, "lfr-6h-s1");
    assert_eq!(ds.value(&ds.rows[1], "theoretical_hours").unwrap(), 1.0);
}

#[test]
fn colpret_without_run_column_keys_runs_by_model_and_seed() {
    let text = "model_name,num_params,tokens_seen,loss,seed\nm1,1e8,1e9,3.0,0\nm1,1e8,1e9,3.1,1\n";
    let ds = parse(text, None).unwrap();
    assert_eq!(ds.rows[0].run, "m1#seed0");
    assert_eq!(ds.rows[1].run, "m1#seed1");
}

#[test]
fn missing_columns_are_named_and_found_ones_listed() {
    let err = parse("num_params,loss\n1e8,3.0\n", Some(Format::Colpret)).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("missing"), "{msg}");
    assert!(msg.contains("[tokens_seen]"), "{msg}");
    assert!(msg.contains("found columns [num_params, loss]"), "{msg}");
}

#[test]
fn unknown_layout_lists_found_columns_and_known_formats() {
    let msg = parse("a,b\n1,2\n", None).unwrap_err().to_string();
    assert!(msg.contains("found columns [a, b]"), "{msg}");
    assert!(msg.contains("opt (model_size, num_token, ppl)"), "{msg}");
}

#[test]
fn bad_cells_name_line_column_and_expectation() {
    let head = "num_params,tokens_seen,loss\n";
    for (row, column) in [
        ("1e8,1e9,NaN", "loss"),
        ("1e8,inf,3.0", "tokens_seen"),
        ("0,1e9,3.0", "num_params"),
        ("1e8,1e9,-1", "loss"),
        ("1e8,1e9,", "loss"),
    ] {
        let text = format!("{head}1e8,1e9,3.0\n{row}\n");
        let msg = parse(&text, None).unwrap_err().to_string();
        assert!(msg.contains("t.csv: line 3"), "{msg}");
        assert!(msg.contains(&format!("column `{column}`")), "{msg}");
        assert!(msg.contains("finite number > 0"), "{msg}");
    }
}

#[test]
fn ragged_rows_are_csv_errors_with_a_line() {
    let msg = parse("num_params,tokens_seen,loss\n1e8,1e9\n", None)
        .unwrap_err()
        .to_string();
    assert!(msg.starts_with("t.csv: line 2"), "{msg}");
}
