//! The `syllabus` command line with the built-in sampling policies; everything lives in the
//! library (`syllabus::cli`), so a binary that registers its own policies is as short as this.

fn main() -> std::process::ExitCode {
    syllabus::cli::main(syllabus::plugins::Plugins::builtin())
}
