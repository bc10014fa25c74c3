//! The `vodup` command. It only wires: parsing arguments, calling the crates that do the work, and
//! turning outcomes into output and exit codes.
//!
//! Commands: `vodup serve` (the self-hosted service), `vodup keys` (its AccessKeys), and the wire-level
//! tools `vodup crc64` (the CRC-64 OSS reports for a file) and `vodup decode` (read an `UploadAddress`
//! or `UploadAuth` with its secrets redacted), and `vodup upload` and `vodup download` (the SDK on the
//! command line).

mod args;
mod bar;
mod batch;
mod download;
mod exit;
mod interrupt;
mod json;
mod output;
mod profile;
mod serve;
mod upload;
mod waiting;

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use vodup_proto::crc64::Crc64;
use vodup_proto::upload_auth::{UploadAddress, UploadAuth};

/// Upload media to ApsaraVideo VOD, or run a self-hosted VOD upload service.
#[derive(Debug, Parser)]
#[command(name = "vodup", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Upload media to VOD: video, image, attached media or an M3U8 playlist.
    #[command(subcommand)]
    Upload(Box<args::UploadCommand>),
    /// Download a video's source (or an image's, or attached media's) and verify its CRC-64.
    Download(Box<download::DownloadArgs>),
    /// Run the self-hosted VOD upload service (VOD RPC API + OSS data plane).
    Serve(Box<serve::ServeArgs>),
    /// Manage the service's long-lived AccessKeys.
    #[command(subcommand)]
    Keys(serve::KeysCommand),
    /// Print the CRC-64 of files as OSS reports it in x-oss-hash-crc64ecma (unsigned decimal).
    Crc64 {
        /// Files to checksum; `-` reads standard input.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Decode a Base64 UploadAddress or UploadAuth and print it as JSON, secrets redacted.
    Decode {
        /// The Base64 value as a VOD Create*/Refresh* call returned it.
        value: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Upload(command) => {
            init_upload_logging();
            if let Some(message) = vodup_sdk::upload::fault::describe() {
                eprintln!("vodup: {message}");
            }
            return match runtime() {
                // One source is an upload, several (or a folder, or a list) a batch.
                Ok(rt) if command.is_batch() => exit::code(rt.block_on(batch::run(&command))),
                Ok(rt) => exit::code(rt.block_on(upload::run(*command))),
                Err(error) => {
                    eprintln!("vodup: {error:#}");
                    exit::code(exit::INPUT)
                }
            };
        }
        Command::Download(args) => {
            init_upload_logging();
            return match runtime() {
                Ok(rt) => exit::code(rt.block_on(download::run(*args))),
                Err(error) => {
                    eprintln!("vodup: {error:#}");
                    exit::code(exit::INPUT)
                }
            };
        }
        Command::Serve(args) => {
            init_logging();
            runtime().and_then(|rt| rt.block_on(serve::serve(*args)))
        }
        Command::Keys(command) => runtime().and_then(|rt| rt.block_on(serve::keys(command))),
        Command::Crc64 { files } => crc64(&files),
        Command::Decode { value } => decode(&value),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) if error.downcast_ref::<vodup_server::config::ConfigError>().is_some() => {
            eprintln!("vodup: {error:#}");
            ExitCode::from(exit::USAGE)
        }
        Err(error) => {
            eprintln!("vodup: {error:#}");
            ExitCode::from(exit::INPUT)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}

/// Logs to stderr, filtered by `VODUP_LOG` (default `info`); never secrets (they are types that print
/// as `******`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VODUP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(io::stderr).with_ansi(false).init();
}

/// Uploads and downloads log warnings only (the bar or the JSON lines say the rest, and an outage is one
/// line of their own): retries log at `info`, with their URLs, only when `VODUP_LOG` asks for it.
fn init_upload_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VODUP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(io::stderr).with_ansi(false).init();
}

fn crc64(files: &[PathBuf]) -> Result<()> {
    let mut stdout = io::stdout().lock();
    let mut buffer = vec![0u8; 1 << 20];
    for path in files {
        let mut reader: Box<dyn Read> = if path.as_os_str() == "-" {
            Box::new(io::stdin().lock())
        } else {
            Box::new(File::open(path).with_context(|| format!("cannot open {}", path.display()))?)
        };
        let mut crc = Crc64::new();
        loop {
            let n = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
            };
            crc.update(&buffer[..n]);
        }
        writeln!(stdout, "{}  {}  {}", crc.value(), crc.len(), path.display())?;
    }
    Ok(())
}

fn decode(value: &str) -> Result<()> {
    let json = match UploadAuth::decode(value) {
        Ok(auth) => serde_json::json!({
            "UploadAuth": {
                "AccessKeyId": auth.access_key_id,
                "AccessKeySecret": auth.access_key_secret.to_string(),
                "SecurityToken": auth.security_token.to_string(),
                "Expiration": auth.expiration,
                "ExpireUTCTime": auth.expire_utc_time,
                "Region": auth.region,
            }
        }),
        Err(_) => {
            let address = UploadAddress::decode(value)
                .context("the value is neither an UploadAuth nor an UploadAddress (Base64 of VOD's JSON)")?;
            serde_json::json!({ "UploadAddress": address })
        }
    };
    writeln!(io::stdout().lock(), "{}", serde_json::to_string_pretty(&json)?)?;
    Ok(())
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|e| e.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe))
}
