//! A desktop-style tool that streams a large file through AWS KMS keys, in memory bounded by
//! the frame length (not the file size).
//!
//! ```text
//! kms_stream encrypt --key ARN [--key ARN ...] [--ec k=v ...] -i FILE -o FILE.esdk
//! kms_stream decrypt (--key ARN ... | --discovery REGION ...) [--ec k=v ...] -i FILE.esdk -o FILE
//! ```
//!
//! Credentials and endpoint come from the environment (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT_URL_KMS`). The first
//! `--key` generates the data key; the others wrap it too, concurrently. The output is written to
//! a temporary file next to the target and renamed only on success, so a failed decryption
//! never leaves unauthenticated plaintext behind. Build with `--features kms`.

#[cfg(feature = "kms")]
fn main() -> std::process::ExitCode {
    match app::run(std::env::args().skip(1).collect()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kms_stream: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(not(feature = "kms"))]
fn main() {
    eprintln!(
        "kms_stream needs the `kms` feature: cargo run -p esdk --features kms --example kms_stream"
    );
}

#[cfg(feature = "kms")]
mod app {
    use std::fs::File;
    use std::io::{self, BufReader, BufWriter, Read, Write};
    use std::path::{Path, PathBuf};
    use std::time::Instant;

    use esdk::kms::{self, DefaultClientSupplier, KmsRuntime, blocking};
    use esdk::{Config, EncryptOptions};

    const USAGE: &str = "usage: kms_stream encrypt|decrypt (--key ARN ... | --discovery REGION ...) \
                         [--ec k=v ...] -i INPUT -o OUTPUT";

    struct Args {
        encrypt: bool,
        keys: Vec<String>,
        regions: Vec<String>,
        ec: Vec<(String, String)>,
        input: PathBuf,
        output: PathBuf,
    }

    fn parse(args: Vec<String>) -> Result<Args, String> {
        let mut it = args.into_iter();
        let encrypt = match it.next().as_deref() {
            Some("encrypt") => true,
            Some("decrypt") => false,
            _ => return Err(USAGE.into()),
        };
        let (mut keys, mut regions, mut ec) = (Vec::new(), Vec::new(), Vec::new());
        let (mut input, mut output) = (None, None);
        while let Some(flag) = it.next() {
            let mut value = || {
                it.next()
                    .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
            };
            match flag.as_str() {
                "--key" => keys.push(value()?),
                "--discovery" => regions.push(value()?),
                "--ec" => {
                    let v = value()?;
                    let (k, val) = v.split_once('=').ok_or("--ec takes key=value")?;
                    ec.push((k.to_owned(), val.to_owned()));
                }
                "-i" | "--input" => input = Some(PathBuf::from(value()?)),
                "-o" | "--output" => output = Some(PathBuf::from(value()?)),
                _ => return Err(format!("unknown argument {flag}\n{USAGE}")),
            }
        }
        if keys.is_empty() == regions.is_empty() || (encrypt && keys.is_empty()) {
            return Err(format!("give --key (or, to decrypt, --discovery)\n{USAGE}"));
        }
        Ok(Args {
            encrypt,
            keys,
            regions,
            ec,
            input: input.ok_or(USAGE)?,
            output: output.ok_or(USAGE)?,
        })
    }

    /// Counts the bytes read and prints the progress about once a second.
    struct Progress<R> {
        inner: R,
        done: u64,
        total: u64,
        last: Instant,
    }

    impl<R: Read> Read for Progress<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.done += n as u64;
            if self.last.elapsed().as_secs() >= 1 {
                self.last = Instant::now();
                eprint!(
                    "\r{:>5.1}% of {} MiB",
                    100.0 * self.done as f64 / self.total.max(1) as f64,
                    self.total >> 20
                );
            }
            Ok(n)
        }
    }

    fn temp_path(out: &Path) -> PathBuf {
        let mut name = out.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".partial-{}", std::process::id()));
        out.with_file_name(name)
    }

    pub fn run(args: Vec<String>) -> Result<(), Box<dyn std::error::Error>> {
        let a = parse(args)?;
        let rt = KmsRuntime::new()?;
        // The AWS credential chain (environment, AWS_PROFILE, SSO, instance roles).
        let supplier = rt.block_on(DefaultClientSupplier::from_aws_chain(None))?;
        let keys: Vec<&str> = a.keys.iter().map(String::as_str).collect();
        let keyring = if a.regions.is_empty() {
            kms::strict_multi_keyring(keys.first().copied(), &keys[1..], &supplier, &[])?
        } else {
            let regions: Vec<&str> = a.regions.iter().map(String::as_str).collect();
            kms::discovery_multi_keyring(&regions, None, &supplier, &[])?
        };
        let ec: Vec<(&str, &str)> = a.ec.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let cfg = Config::new();

        let file = File::open(&a.input)?;
        let total = file.metadata()?.len();
        let now = Instant::now();
        let reader = Progress {
            inner: BufReader::with_capacity(1 << 20, file),
            done: 0,
            total,
            last: now,
        };
        let tmp = temp_path(&a.output);
        let writer = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        let result = if a.encrypt {
            let opts = EncryptOptions::new().with_frame_length(64 * 1024);
            blocking::encrypt_stream(&rt, &cfg, &keyring, &opts, &ec, reader, writer)
        } else {
            blocking::decrypt_stream(&rt, &cfg, &keyring, &ec, reader, writer)
        };
        let written = match result {
            Ok(n) => n,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e.into());
            }
        };
        std::fs::rename(&tmp, &a.output)?;
        let secs = now.elapsed().as_secs_f64();
        eprintln!(
            "\r{} {} MiB -> {} ({} bytes) in {secs:.2} s, {:.0} MiB/s",
            if a.encrypt { "encrypted" } else { "decrypted" },
            total >> 20,
            a.output.display(),
            written,
            (total as f64 / (1 << 20) as f64) / secs.max(1e-9),
        );
        io::stderr().flush()?;
        Ok(())
    }
}
