//! Task files in the user cache: when `eval.tasks_dir` is unset or does not exist, the suite
//! reads `$XDG_CACHE_HOME/syllabus/eval`. Its own test binary, because it sets an environment
//! variable for the whole process.

mod eval_support;

use syllabus::config::Config;
use syllabus::eval::Task;

#[test]
fn task_files_come_from_the_user_cache_when_tasks_dir_is_unset_or_missing() {
    let home = tempfile::tempdir().unwrap();
    std::env::set_var("XDG_CACHE_HOME", home.path());
    let cache = home.path().join("syllabus/eval");
    std::fs::create_dir_all(&cache).unwrap();
    eval_support::write_tasks_dir(&cache);
    let config = |tasks_dir: &str| {
        let text = format!(
            "[data]\nprepared_dir = \"p\"\n[model]\npreset = \"tiny\"\n[budget]\nsteps = 200\n\
             [train]\nbatch_size = 2\n[eval]\ntasks = [\"piqa\"]\n{tasks_dir}"
        );
        Config::from_toml_str(&text, "t.toml", &[]).unwrap()
    };
    // Unset (the default): the user cache.
    let opts = syllabus::train::suite_options(&config(""), None).unwrap();
    assert_eq!(opts.tasks_dir, cache);
    assert_eq!(opts.tasks, [Task::Piqa]);

    // Set but missing (a saved config from another machine): the user cache too.
    let missing = home.path().join("nowhere");
    let set = |dir: &std::path::Path| config(&format!("tasks_dir = \"{}\"\n", dir.display()));
    let opts = syllabus::train::suite_options(&set(&missing), None).unwrap();
    assert_eq!(opts.tasks_dir, cache);

    // A tasks_dir that exists is used as configured, even without the task's file.
    let other = tempfile::tempdir().unwrap();
    let err = syllabus::train::suite_options(&set(other.path()), None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("piqa_valid.jsonl.gz") && err.contains("user cache"),
        "{err}"
    );
}
