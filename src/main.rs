//! `syllabus` command-line entry point: parse, dispatch, report errors. The work lives in the
//! library; see `cli.rs` for the commands.

mod cli;

fn main() {
    if let Err(err) = cli::run() {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}
