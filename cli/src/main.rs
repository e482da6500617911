//! `esdk`: encrypt and decrypt files, directories and stdin/stdout in the AWS Encryption SDK
//! message format, byte-compatible with the official SDKs. Run `esdk --help`.
// One module (`cli::mapped`, memory-mapped input files) opts in to `unsafe`.
#![deny(unsafe_code)]

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
