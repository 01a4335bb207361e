//! The `xeroguard` command; each command lives in src/cli/.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
