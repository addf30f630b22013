//! `jit-test-nats-setup DIR PORT`: writes the keys and configuration of an operator-mode
//! NATS server for the `nats` provider into DIR, unless they are there already (see
//! `jit_test_providers::nats::setup`). Prints where the key file is.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(dir), Some(Ok(port)), 2) = (
        args.first().map(PathBuf::from),
        args.get(1).map(|p| p.parse::<u16>()),
        args.len(),
    ) else {
        eprintln!("usage: jit-test-nats-setup DIR PORT");
        return ExitCode::from(2);
    };
    match jit_test_providers::nats::setup::write(&dir, port) {
        Ok(wrote) => {
            let verb = if wrote { "wrote" } else { "kept" };
            println!(
                "{verb} {}",
                dir.join(jit_test_providers::nats::setup::KEY_FILE)
                    .display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("jit-test-nats-setup: {e}");
            ExitCode::FAILURE
        }
    }
}
