//! Task files in the user cache: when `eval.tasks_dir` does not exist, the suite reads
//! `$XDG_CACHE_HOME/syllabus/eval`. Its own test binary, because it sets an environment
//! variable for the whole process.

mod eval_support;

use syllabus::config::Config;
use syllabus::eval::Task;

#[test]
fn task_files_come_from_the_user_cache_when_tasks_dir_is_missing() {
    let home = tempfile::tempdir().unwrap();
    std::env::set_var("XDG_CACHE_HOME", home.path());
    let cache = home.path().join("syllabus/eval");
    std::fs::create_dir_all(&cache).unwrap();
    eval_support::write_tasks_dir(&cache);
    let config = |tasks_dir: &str| {
        let text = format!(
            "[data]\nprepared_dir = \"p\"\n[model]\npreset = \"tiny\"\n[budget]\nsteps = 200\n\
             [train]\nbatch_size = 2\n[eval]\ntasks = [\"piqa\"]\ntasks_dir = \"{tasks_dir}\"\n"
        );
        Config::from_toml_str(&text, "t.toml", &[]).unwrap()
    };
    let missing = home.path().join("nowhere");
    let opts = syllabus::train::suite_options(&config(missing.to_str().unwrap()), None).unwrap();
    assert_eq!(opts.tasks_dir, cache);
    assert_eq!(opts.tasks, [Task::Piqa]);

    // A tasks_dir that exists is used as configured, even without the task's file.
    let other = tempfile::tempdir().unwrap();
    let err = syllabus::train::suite_options(&config(other.path().to_str().unwrap()), None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("piqa_valid.jsonl.gz") && err.contains("user cache"),
        "{err}"
    );
}
