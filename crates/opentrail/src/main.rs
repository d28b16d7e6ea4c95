//! The `opentrail` binary: subcommands, config loading and wiring. Glue only.

mod bucket_source;
mod commands;
mod query;
mod serve;
mod validate;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: ingest allocates many short-lived strings per record, and
/// glibc malloc showed up as ~10 % of the server's CPU in profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Default listen address of `opentrail serve` and default endpoint of the client subcommands.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4590";

#[derive(Parser)]
#[command(
    name = "opentrail",
    version,
    about = "A self-hosted AWS CloudTrail: record every API call, find any of them in milliseconds."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: ingest API, CloudTrail API, event history, metrics.
    Serve {
        /// TOML config (account, region, principals and their keys). Without one, an admin key is generated.
        #[arg(long, env = "OPENTRAIL_CONFIG")]
        config: Option<PathBuf>,
        /// Where the journal, index and generated keys live [default: ./opentrail-data].
        #[arg(long, env = "OPENTRAIL_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Address to listen on; port 0 picks a free port [default: 127.0.0.1:4590].
        #[arg(long, env = "OPENTRAIL_LISTEN")]
        listen: Option<String>,
    },
    /// Send CloudTrail records to a server: NDJSON, {"Records":[…]} JSON, or .gz of either; `-` is stdin.
    Ingest {
        #[arg(long, env = "OPENTRAIL_ENDPOINT", default_value_t = format!("http://{DEFAULT_LISTEN}"))]
        endpoint: String,
        /// Records per request.
        #[arg(long, default_value_t = 2000)]
        batch: usize,
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// Find events, newest first.
    Lookup {
        #[arg(long, env = "OPENTRAIL_ENDPOINT", default_value_t = format!("http://{DEFAULT_LISTEN}"))]
        endpoint: String,
        /// KEY=V1,V2 (any of the values) or KEY!=V1,V2 (none of them); a trailing * is a prefix
        /// (EventName=Delete*), SourceIPAddress takes CIDR blocks (10.0.0.0/8); \ escapes \ , * !.
        /// Different keys are AND-ed, a key repeated is OR-ed. Keys: EventId, EventName, ReadOnly, Username,
        /// ResourceType, ResourceName, EventSource, AccessKeyId, SourceIPAddress, ErrorCode, UserAgent,
        /// AccountId, Provenance. See README, "Query grammar".
        #[arg(long = "attr", value_name = "KEY=VALUE")]
        attrs: Vec<String>,
        /// Print how many events match instead of the events.
        #[arg(long)]
        count: bool,
        /// With --count: the most frequent values of this attribute among the matches, with their counts.
        #[arg(long, value_name = "KEY", requires = "count")]
        by: Option<String>,
        /// With --count --by: how many values to print.
        #[arg(long, default_value_t = 10, requires = "by")]
        top: usize,
        /// Earliest event time (ISO-8601 or epoch seconds), inclusive.
        #[arg(long)]
        start: Option<String>,
        /// Latest event time (ISO-8601 or epoch seconds), inclusive.
        #[arg(long)]
        end: Option<String>,
        /// Total number of events to print (pages as needed).
        #[arg(long, default_value_t = 50)]
        max: usize,
        /// Look up Insights events instead of management events.
        #[arg(long)]
        insights: bool,
        #[arg(long, value_enum, default_value_t = commands::Output::Table)]
        output: commands::Output,
    },
    /// Verify offline that the index agrees with the journal (the server must be stopped).
    Check {
        #[arg(long, env = "OPENTRAIL_DATA_DIR", default_value = "opentrail-data")]
        data_dir: PathBuf,
    },
    /// Check a trail's log files and digests, like `aws cloudtrail validate-logs` and more: online against a
    /// server (--endpoint), or offline from a copy of the bucket and the public keys (--bucket-dir,
    /// --public-key). Exit code 0 valid, 1 invalid, 2 could not run.
    Validate(validate::ValidateArgs),
    /// The digest signing keys: list them (with their validity windows) or rotate.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Print deterministic, realistic CloudTrail traffic as NDJSON.
    Gen {
        #[arg(long)]
        events: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// First event time [default: 2026-01-01T00:00:00Z].
        #[arg(long)]
        start: Option<String>,
        /// Time covered, e.g. 90s, 30m, 12h, 7d [default: 1d].
        #[arg(long)]
        span: Option<String>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// ListPublicKeys: every key (or those valid in [--start-time, --end-time]) with its validity window;
    /// `--output value` or `pem` writes a key file for `opentrail validate --public-key`.
    List {
        #[arg(long, env = "OPENTRAIL_ENDPOINT", default_value_t = format!("http://{DEFAULT_LISTEN}"))]
        endpoint: String,
        #[arg(long)]
        start_time: Option<String>,
        #[arg(long)]
        end_time: Option<String>,
        /// Only the key with this fingerprint.
        #[arg(long)]
        fingerprint: Option<String>,
        #[arg(long, value_enum, default_value_t = validate::KeyOutput::Table)]
        output: validate::KeyOutput,
    },
    /// Start signing digests with a new key now (admins only); the old keys stay published.
    Rotate {
        #[arg(long, env = "OPENTRAIL_ENDPOINT", default_value_t = format!("http://{DEFAULT_LISTEN}"))]
        endpoint: String,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { config, data_dir, listen } => serve::run(config, data_dir, listen),
        Command::Ingest { endpoint, batch, files } => commands::ingest(&endpoint, batch, &files),
        Command::Lookup { endpoint, attrs, count: true, by, top, start, end, insights, output, .. } => {
            query::count(&endpoint, &attrs, start.as_deref(), end.as_deref(), insights, by.as_deref(), top, output)
        }
        Command::Lookup { endpoint, attrs, start, end, max, insights, output, .. } => {
            commands::lookup(&endpoint, &attrs, start.as_deref(), end.as_deref(), max, insights, output)
        }
        Command::Check { data_dir } => serve::check(&data_dir),
        Command::Validate(args) => return validate::run(&args),
        Command::Keys { command: KeysCommand::List { endpoint, start_time, end_time, fingerprint, output } } => {
            validate::keys_list(&endpoint, start_time.as_deref(), end_time.as_deref(), fingerprint.as_deref(), output)
        }
        Command::Keys { command: KeysCommand::Rotate { endpoint } } => validate::keys_rotate(&endpoint),
        Command::Gen { events, seed, start, span } => {
            commands::gen_events(events, seed, start.as_deref(), span.as_deref())
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
