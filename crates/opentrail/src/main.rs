//! The `opentrail` binary: subcommands, config loading and wiring. Glue only.

/// `eprintln!` that never panics: a closed stderr (`opentrail ingest DIR 2>&1 | head`) loses the message,
/// nothing more.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod bucket_source;
mod commands;
mod gateway_cmd;
mod import;
mod ingest;
mod insights_cmd;
mod lake_cmd;
mod output;
mod query;
mod serve;
mod validate;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: ingest allocates many short-lived strings per record, and
/// glibc malloc showed up as ~10 % of the server's CPU in profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns transparent huge pages off for this process (Linux `PR_SET_THP_DISABLE`; it covers every mapping
/// from here on, the allocator's included). With THP `always` (a common distribution default), each query
/// the lake runs faults fresh 2 MiB pages that the kernel zeroes whole: in profiles a quarter of the
/// server's CPU went to `clear_page`, and a `GROUP BY eventName` over 10 M events took 80–450 ms instead of
/// a steady 60 (BENCHMARKS.md, "Lake"). The flag is per process and inherited by children; nothing else
/// on the machine changes. Where it cannot be set, nothing happens.
fn no_transparent_huge_pages() {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
}

/// Default listen address of `opentrail serve` and default endpoint of the client subcommands.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4590";

/// How every client subcommand finds its credentials, appended to their `--help`.
const CREDENTIALS_HELP: &str = "\
Credentials are found as the aws CLI finds them: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, else the
AWS_PROFILE (or `default`) section of the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, else
~/.aws/credentials). A server started without a config generates an admin key into
<data-dir>/credentials, profile `opentrail`:
  export AWS_SHARED_CREDENTIALS_FILE=opentrail-data/credentials AWS_PROFILE=opentrail
Requests are signed with SigV4 for AWS_REGION (or AWS_DEFAULT_REGION, else us-east-1) and sent with the
user agent opentrail/<version>.";

#[derive(Parser)]
#[command(
    name = "opentrail",
    version,
    about = "A self-hosted AWS CloudTrail: record every API call, find any of them in milliseconds.",
    after_help = CREDENTIALS_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `--endpoint` of every client subcommand.
#[derive(clap::Args)]
struct Endpoint {
    /// The opentrail server to talk to.
    #[arg(long, env = "OPENTRAIL_ENDPOINT", default_value_t = format!("http://{DEFAULT_LISTEN}"))]
    endpoint: String,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: ingest API, CloudTrail API, event history, metrics.
    #[command(after_help = "\
Without principals in the config, the first start generates an admin key into <data-dir>/credentials
(mode 0600, an AWS shared-credentials file, profile `opentrail`) and prints its secret once, to stderr,
only when stderr is a terminal; later starts use it and print where it is, never the secret.
The data dir is made 0700 and everything the server creates in it is private to its user (0600/0700).
Logs go to stderr: OPENTRAIL_LOG sets the level or filter (default info: one line per request);
OPENTRAIL_LOG_FORMAT=json writes JSON lines; colours only when stderr is a terminal (and NO_COLOR is unset).")]
    Serve {
        /// TOML config (account, region, principals and their keys). Without one, an admin key is generated.
        #[arg(long, env = "OPENTRAIL_CONFIG")]
        config: Option<PathBuf>,
        /// Where the journal, index and generated keys live [default: ./opentrail-data].
        #[arg(long, env = "OPENTRAIL_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Address to listen on; port 0 picks a free port [default: 127.0.0.1:4590]. A port in use fails
        /// the start before anything is written to the data dir.
        #[arg(long, env = "OPENTRAIL_LISTEN")]
        listen: Option<String>,
    },
    /// Send CloudTrail records to a server: files (NDJSON, {"Records":[…]} JSON, or .gz of either), `-` for
    /// stdin, or import a CloudTrail history: a folder such as a synced AWSLogs/ tree, or s3://bucket/prefix.
    #[command(after_help = format!("\
A folder or an s3://bucket/prefix is an import: its .json.gz and .json log files are sent in key order (a
folder's keys are the paths below it); digest files (CloudTrail-Digest/ folders, _CloudTrail-Digest_ names),
hidden files and other objects are skipped and counted. Runs of .json.gz files go to the server as they are
stored, many in one request. An import keeps a position (--state, default one file per server and source
under $XDG_STATE_HOME/opentrail/ingest/, else ~/.local/state/opentrail/ingest/): a file is done once the
server acknowledged all its records, and an import interrupted anyhow (Ctrl-C, kill, network error, the
server gone) and run again continues after the last file done. --restart sends everything again.
Files named on the command line are sent whatever their name (digests excepted), without a position.
Records are deduplicated by eventID on the server, so nothing is stored twice: the summary says how many
records were new and how many already stored. Progress (files, events, bytes, rate, ETA) goes to stderr
when it is a terminal. Exit status 1 when a record was refused, a file could not be read, or an import
stopped before its end.

S3 (any S3-compatible endpoint): --s3-endpoint, else AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL, else AWS
S3 in --s3-region (else AWS_REGION, AWS_DEFAULT_REGION, us-east-1); path-style requests, plain http only to
loopback. S3 is read with the same credentials as the server unless --s3-profile names another profile of
the shared credentials file.

{CREDENTIALS_HELP}"))]
    Ingest {
        #[command(flatten)]
        endpoint: Endpoint,
        /// Records per request (files named, and log files the server refused whole, split here).
        #[arg(long, default_value_t = 2000)]
        batch: usize,
        /// The position file of an import (one folder or s3:// source).
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
        /// Forget an import's position and send everything again.
        #[arg(long)]
        restart: bool,
        /// An import sends at most this many log files in one request.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
        files_per_request: u64,
        /// An import sends no faster than this many records a second (to spare a busy server).
        #[arg(long, value_name = "N")]
        max_events_per_second: Option<f64>,
        #[command(flatten)]
        s3: import::S3Args,
        /// Files, folders, s3://bucket/prefix, or `-` for stdin.
        #[arg(required = true, value_name = "FILE|DIR|s3://BUCKET/PREFIX|-")]
        files: Vec<String>,
    },
    /// Find events, newest first.
    #[command(after_help = format!("\
Times (--start, --end) are ISO-8601 (2020-01-01T09:00:00Z), `YYYY-MM-DD HH:MM:SS` (UTC), epoch seconds, or
epoch milliseconds (12 digits or more); --since and --until also take a duration before now: 90s, 30m, 1h,
7d, 2w.
When --max cuts the result, stderr says so. opentrail's own lookups (the LookupEvents records this tool's
calls leave, user agent opentrail/…) are left out unless --include-own-reads; they are still stored, and
found through the API. Pages of up to 1000 events are read, one request (and one audit record) each.
Output goes out page by page; a closed pipe (`| head`) ends the command quietly.

{CREDENTIALS_HELP}"))]
    Lookup {
        #[command(flatten)]
        endpoint: Endpoint,
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
        /// Earliest event time, inclusive.
        #[arg(long, value_name = "TIME")]
        start: Option<String>,
        /// Latest event time, inclusive.
        #[arg(long, value_name = "TIME")]
        end: Option<String>,
        /// Earliest event time as a duration before now (1h, 30m, 7d…) or a time; instead of --start.
        #[arg(long, value_name = "AGO|TIME", conflicts_with = "start")]
        since: Option<String>,
        /// Latest event time as a duration before now (30m…) or a time; instead of --end.
        #[arg(long, value_name = "AGO|TIME", conflicts_with = "end")]
        until: Option<String>,
        /// How many events to print at most (stderr says when more match).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
        max: u64,
        /// Print every matching event (no --max).
        #[arg(long, conflicts_with = "max")]
        all: bool,
        /// Look up Insights events instead of management events.
        #[arg(long)]
        insights: bool,
        /// Also show the audit records of opentrail's own lookups.
        #[arg(long)]
        include_own_reads: bool,
        /// How to print the events.
        #[arg(long, value_enum, default_value_t = output::Output::Table)]
        output: output::Output,
    },
    /// Run an audit gateway: a reverse proxy that records every call to the upstream as a CloudTrail event
    /// on the server at --endpoint, before the answer is released (or into a spool with --spool).
    #[command(after_help = format!("\
The process prints `opentrail gateway listening on http://ADDR` once it listens (port 0 picks a port).
Records go to POST /v1/events of the server, signed with the credentials below (a writer key suffices);
concurrent calls' records share one request. Without --spool the gateway is fail-closed: while the
server cannot take records, calls are answered 503 and not forwarded. Counters: GET {}
on the gateway's own address. Semantics and the config file: docs/gateway.md.

{CREDENTIALS_HELP}", gateway::METRICS_PATH))]
    Gateway {
        #[command(flatten)]
        endpoint: Endpoint,
        /// Address to listen on (port 0 picks a free port) [default: the config's, else 127.0.0.1:9000].
        #[arg(long)]
        listen: Option<String>,
        /// The service behind the gateway, http://host:port [default: the config's].
        #[arg(long)]
        upstream: Option<String>,
        /// Gateway config (TOML: capture policy, redaction, identities, OpenAPI, JWT…).
        #[arg(long)]
        config: Option<PathBuf>,
        /// What the upstream speaks: aws (AWS-compatible service) or http (any HTTP API) [default: aws].
        #[arg(long)]
        kind: Option<gateway::Kind>,
        /// Spool mode: records are written to this folder first and forwarded in the background.
        #[arg(long, value_name = "DIR")]
        spool: Option<PathBuf>,
    },
    /// Run a CloudTrail Lake SQL query (SELECT only) over an event data store and print its rows.
    #[command(after_help = format!("\
The store is --store (a name, id or ARN) or, by default, `opentrail-default`, created on first use with every
management event and the S3, Lambda and DynamoDB data events. `FROM events` names that store; an event data
store id (`FROM 3f1e…`) names any store, as in CloudTrail Lake. Field names as CloudTrail Lake spells them:
eventTime, eventName, userIdentity.username, sourceIPAddress, … (case does not matter). A spinner shows on a
terminal while the query runs; statistics go to stderr on a terminal.

{CREDENTIALS_HELP}"))]
    Query {
        #[command(flatten)]
        endpoint: Endpoint,
        /// The event data store (name, id or ARN) [default: opentrail-default, created on first use].
        #[arg(long)]
        store: Option<String>,
        /// How to print the rows.
        #[arg(long, value_enum, default_value_t = lake_cmd::QueryOutput::Table)]
        output: lake_cmd::QueryOutput,
        /// The SQL statement.
        sql: String,
    },
    /// Export the events of a time range as Parquet or CloudTrail log files, resumably (a position file in
    /// --out says where an interrupted export goes on).
    #[command(after_help = CREDENTIALS_HELP)]
    Export {
        #[command(flatten)]
        endpoint: Endpoint,
        /// Earliest event time, inclusive (ISO-8601, epoch seconds or ms, or a duration before now: 7d).
        #[arg(long)]
        start: String,
        /// Latest event time, inclusive.
        #[arg(long)]
        end: String,
        /// What to write: Parquet files of the lake's schema, or CloudTrail log files (gzip'd `{"Records":[…]}`).
        #[arg(long, value_enum)]
        format: lake_cmd::ExportFormat,
        /// The folder to write into (created; holds the position file `.opentrail-export.json`).
        #[arg(long)]
        out: PathBuf,
        /// Events per file (default: 50000 for parquet, 1000 for cloudtrail); a file's events are held in
        /// memory while it is written.
        #[arg(long)]
        events_per_file: Option<u64>,
    },
    /// Verify offline that the index agrees with the journal (the server must be stopped).
    Check {
        /// The server's data dir.
        #[arg(long, env = "OPENTRAIL_DATA_DIR", default_value = "opentrail-data")]
        data_dir: PathBuf,
    },
    /// Check a trail's log files and digests, like `aws cloudtrail validate-logs` and more: online against a
    /// server (--endpoint), or offline from a copy of the bucket and the public keys (--bucket-dir,
    /// --public-key). Exit code 0 valid, 1 invalid, 2 could not run.
    #[command(after_help = CREDENTIALS_HELP)]
    Validate(validate::ValidateArgs),
    /// The digest signing keys: list them (with their validity windows) or rotate.
    #[command(after_help = CREDENTIALS_HELP)]
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The web console's helpers (the console itself is served by `opentrail serve`, at `/`).
    Console {
        #[command(subcommand)]
        command: ConsoleCommand,
    },
    /// The Insights detector with no server: over historical events, or over one numeric series.
    Insights {
        #[command(subcommand)]
        command: InsightsCommand,
    },
    /// Print deterministic, realistic CloudTrail traffic as NDJSON.
    Gen {
        /// How many events.
        #[arg(long)]
        events: u64,
        /// The same seed prints the same events.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// First event time (ISO-8601, epoch seconds or milliseconds) [default: 2026-01-01T00:00:00Z].
        #[arg(long)]
        start: Option<String>,
        /// Time covered, e.g. 90s, 30m, 12h, 7d, 2w [default: 1d].
        #[arg(long)]
        span: Option<String>,
    },
}

#[derive(Subcommand)]
enum InsightsCommand {
    /// Run the detector over historical events (NDJSON or CloudTrail log files, gzip'd or not; `-` is stdin)
    /// in eventTime order and print the Insights it would have raised.
    Replay {
        /// Files or folders of records: NDJSON, `{"Records":[…]}` log files, gzip'd or not (folders walked,
        /// digests skipped); `-` is stdin.
        #[arg(required = true)]
        files: Vec<String>,
        #[command(flatten)]
        detector: DetectorArgs,
        /// Analyse data events too (by default management events only, as CloudTrail does).
        #[arg(long)]
        data_events: bool,
        /// `table`: one line per Start and End; `json`: the Insights events as CloudTrail writes them.
        #[arg(long, value_enum, default_value_t = insights_cmd::ReplayOutput::Table)]
        output: insights_cmd::ReplayOutput,
    },
    /// Run the detector core on one series: `timestamp,value` rows at a regular interval (ISO-8601 or epoch
    /// seconds/milliseconds; a header row is allowed) → `timestamp,value,anomaly_score,alarm` per row,
    /// strictly streaming (a row's output depends only on the rows up to it).
    Series {
        /// The CSV file, or `-` for stdin.
        file: String,
        #[command(flatten)]
        detector: DetectorArgs,
    },
}

/// The detector's settings (docs/insights.md).
#[derive(clap::Args)]
struct DetectorArgs {
    /// Expected false Insights per API per week the thresholds allow (the Insights selector's `Sensitivity`).
    #[arg(long)]
    sensitivity: Option<f64>,
    /// Only call-rate Insights.
    #[arg(long, conflicts_with = "error_rate_only")]
    call_rate_only: bool,
    /// Only error-rate Insights.
    #[arg(long)]
    error_rate_only: bool,
}

impl DetectorArgs {
    fn settings(&self) -> anyhow::Result<insights::Settings> {
        let mut s = insights::Settings::default();
        if let Some(v) = self.sensitivity {
            if !service::trails::SENSITIVITY_RANGE.contains(&v) {
                anyhow::bail!(
                    "--sensitivity {v} is out of range: give the false Insights per API per week, from {} to {}",
                    service::trails::SENSITIVITY_RANGE.start(),
                    service::trails::SENSITIVITY_RANGE.end()
                );
            }
            s.false_alarms_per_week = v;
        }
        s.call_rate = !self.error_rate_only;
        s.error_rate = !self.call_rate_only;
        Ok(s)
    }
}

#[derive(Subcommand)]
enum ConsoleCommand {
    /// Reads a password from stdin (its first line) and prints its argon2id PHC string, for
    /// `password_hash` of a `[[console.users]]` entry in the config.
    #[command(after_help = "\
Example:
  printf '%s\\n' 'a long passphrase' | opentrail console hash-password
Config:
  [[console.users]]
  name = \"ana\"
  password_hash = \"$argon2id$v=19$m=19456,t=2,p=1$…\"
  principal = \"AKIAEXAMPLEAUDITOR01\"   # the access key ID whose role and policy ana gets")]
    HashPassword,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// ListPublicKeys: every key (or those valid in [--start-time, --end-time]) with its validity window;
    /// `--output value` or `pem` writes a key file for `opentrail validate --public-key`.
    #[command(after_help = CREDENTIALS_HELP)]
    List {
        #[command(flatten)]
        endpoint: Endpoint,
        /// Keys valid at or after this time (ISO-8601, epoch seconds or milliseconds) [default: all].
        #[arg(long)]
        start_time: Option<String>,
        /// Keys valid at or before this time [default: all].
        #[arg(long)]
        end_time: Option<String>,
        /// Only the key with this fingerprint.
        #[arg(long)]
        fingerprint: Option<String>,
        /// How to print the keys.
        #[arg(long, value_enum, default_value_t = validate::KeyOutput::Table)]
        output: validate::KeyOutput,
    },
    /// Start signing digests with a new key now (admins only); the old keys stay published.
    #[command(after_help = CREDENTIALS_HELP)]
    Rotate {
        #[command(flatten)]
        endpoint: Endpoint,
    },
}

/// `opentrail console hash-password`: the first line of stdin (without its line ending), hashed.
fn hash_password() -> anyhow::Result<std::process::ExitCode> {
    use anyhow::Context;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).context("read the password from stdin")?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    let phc = console::hash_password(password).context("hash the password")?;
    println!("{phc}");
    Ok(std::process::ExitCode::SUCCESS)
}

fn main() -> std::process::ExitCode {
    no_transparent_huge_pages();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { config, data_dir, listen } => serve::run(config, data_dir, listen),
        Command::Ingest { endpoint, batch, state, restart, files_per_request, max_events_per_second, s3, files } => {
            let opts = import::ImportOptions {
                endpoint: &endpoint.endpoint,
                batch,
                state: state.as_deref(),
                restart,
                files_per_request: files_per_request as usize,
                max_events_per_second,
                s3: &s3,
            };
            ingest::run(&opts, &files)
        }
        Command::Query { endpoint, store, output, sql } => {
            lake_cmd::query(&endpoint.endpoint, &lake_cmd::QueryArgs { sql: &sql, store: store.as_deref(), output })
        }
        Command::Export { endpoint, start, end, format, out, events_per_file } => lake_cmd::export(
            &endpoint.endpoint,
            &lake_cmd::ExportArgs { start: &start, end: &end, format, out: &out, events_per_file },
        ),
        Command::Lookup {
            endpoint, attrs, count: true, by, top, start, end, since, until, insights, output, ..
        } => query::count(
            &endpoint.endpoint,
            &query::CountArgs {
                attrs: &attrs,
                start: start.as_deref().or(since.as_deref()),
                end: end.as_deref().or(until.as_deref()),
                insights,
                by: by.as_deref(),
                top,
                output,
            },
        ),
        Command::Lookup {
            endpoint,
            attrs,
            start,
            end,
            since,
            until,
            max,
            all,
            insights,
            include_own_reads,
            output,
            ..
        } => commands::lookup(
            &endpoint.endpoint,
            &commands::LookupArgs {
                attrs: &attrs,
                start: start.as_deref().or(since.as_deref()),
                end: end.as_deref().or(until.as_deref()),
                max: (!all).then_some(max),
                insights,
                include_own_reads,
                output,
            },
        ),
        Command::Gateway { endpoint, listen, upstream, config, kind, spool } => {
            gateway_cmd::run(&endpoint.endpoint, listen, upstream, config, kind, spool)
        }
        Command::Check { data_dir } => serve::check(&data_dir),
        Command::Validate(args) => return validate::run(&args),
        Command::Keys { command: KeysCommand::List { endpoint, start_time, end_time, fingerprint, output } } => {
            validate::keys_list(
                &endpoint.endpoint,
                start_time.as_deref(),
                end_time.as_deref(),
                fingerprint.as_deref(),
                output,
            )
        }
        Command::Keys { command: KeysCommand::Rotate { endpoint } } => validate::keys_rotate(&endpoint.endpoint),
        Command::Console { command: ConsoleCommand::HashPassword } => hash_password(),
        Command::Insights { command: InsightsCommand::Replay { files, detector, data_events, output } } => {
            detector.settings().and_then(|s| insights_cmd::replay(&files, s, data_events, output))
        }
        Command::Insights { command: InsightsCommand::Series { file, detector } } => {
            detector.settings().and_then(|s| insights_cmd::series(&file, s))
        }
        Command::Gen { events, seed, start, span } => {
            commands::gen_events(events, seed, start.as_deref(), span.as_deref())
        }
    };
    match result {
        Ok(code) => code,
        // `opentrail … | head` closed the pipe: not an error.
        Err(e) if output::is_broken_pipe(&e) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            note!("error: {}", error_text(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, each said once: a cause whose text its parent already includes
/// (as `ureq`'s and `io`'s errors do) is not repeated. A refused connection says what to start.
pub fn error_text(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if parts.last().is_some_and(|p| p.contains(&text)) {
            continue;
        }
        parts.push(text);
    }
    let mut text = parts.join(": ");
    let refused = e.chain().any(|c| c.downcast_ref::<client::ClientError>().is_some_and(|c| c.connection_refused()));
    if refused {
        text.push_str(" — is `opentrail serve` running?");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_chain_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let e = anyhow::Error::new(io).context("io: connection refused").context("cannot reach http://x");
        assert_eq!(error_text(&e), "cannot reach http://x: io: connection refused");
    }

    #[test]
    fn every_flag_of_every_subcommand_is_described() {
        use clap::CommandFactory;
        fn check(cmd: &clap::Command, path: &str) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                assert!(arg.get_help().is_some() || arg.get_long_help().is_some(), "{path} {id} has no help");
            }
            for sub in cmd.get_subcommands() {
                assert!(sub.get_about().is_some(), "{path} {} has no about", sub.get_name());
                check(sub, &format!("{path} {}", sub.get_name()));
            }
        }
        Cli::command().debug_assert();
        check(&Cli::command(), "opentrail");
    }
}
