//! `esdk`: encrypt and decrypt files, directories and stdin/stdout in the AWS Encryption SDK
//! message format, byte-compatible with the official SDKs. Run `esdk --help`.
#![forbid(unsafe_code)]

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
