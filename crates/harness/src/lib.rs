//! The real `opentrail serve` process, for the black-box tests and the benchmark: started (port 0 by default)
//! and waited for until it listens, its stderr kept in a log file next to its data dir, stopped (SIGTERM) or
//! killed (SIGKILL, as a crash would), and read from outside: the ERROR lines it logged, its pid and memory.
//! Also a real S3 server for delivery tests: moto's, on loopback ([`MotoServer`]).

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

mod moto;
pub use moto::{MotoServer, free_port};

/// How to start `opentrail serve`.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub bin: PathBuf,
    pub data_dir: PathBuf,
    pub config: Option<PathBuf>,
    /// `--listen`; port 0 picks a free port, read back from the server's "listening" line.
    pub listen: String,
    /// `OPENTRAIL_LOG` of the server.
    pub log_filter: String,
}

impl ServeOptions {
    /// `bin serve --data-dir data_dir --listen 127.0.0.1:0`, no config, logging at info.
    pub fn new(bin: &Path, data_dir: &Path) -> ServeOptions {
        ServeOptions {
            bin: bin.to_path_buf(),
            data_dir: data_dir.to_path_buf(),
            config: None,
            listen: "127.0.0.1:0".to_string(),
            log_filter: "info".to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("{op} {}", path.display())]
    Io { op: &'static str, path: PathBuf, source: std::io::Error },
    #[error("server exited before listening: {log}")]
    ExitedBeforeListening { log: String },
    #[error("expected the https listening line, got {line:?}")]
    NoHttpsLine { line: Option<String> },
    #[error("expected a gateway listening line, got {line:?}")]
    NoGatewayLine { line: Option<String> },
    #[error("gateway exited before listening: {log}")]
    GatewayExited { log: String },
    #[error("moto server: {reason}")]
    Moto { reason: String },
    #[error("no {field} in /proc/{pid}/status")]
    ProcStatus { pid: u32, field: &'static str },
}

/// A running server; SIGKILLed when dropped unless stopped first.
pub struct Server {
    process: Process,
    /// `host:port` of the HTTP listener.
    pub addr: String,
    /// `http://` + `addr`.
    pub endpoint: String,
    /// `https://ADDR` when the config has a `[tls]` section (the second stdout line).
    pub https_endpoint: Option<String>,
    /// The `[[gateways]]` run inside the server: (name, `http://ADDR`), in config order.
    pub gateways: Vec<(String, String)>,
    pub data_dir: PathBuf,
    pub config: Option<PathBuf>,
}

impl Server {
    /// Starts the server and waits for its "opentrail listening on http://" line.
    pub fn spawn(opts: &ServeOptions) -> Result<Server, HarnessError> {
        std::fs::create_dir_all(&opts.data_dir).map_err(io("create", &opts.data_dir))?;
        let stderr_log = opts.data_dir.with_extension("stderr.log");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&stderr_log);
        let log = log.map_err(io("open", &stderr_log))?;
        let log_start = log.metadata().map_err(io("stat", &stderr_log))?.len();
        let mut cmd = Command::new(&opts.bin);
        cmd.arg("serve").arg("--data-dir").arg(&opts.data_dir).arg("--listen").arg(&opts.listen);
        if let Some(c) = &opts.config {
            cmd.arg("--config").arg(c);
        }
        // NO_COLOR: the log then reads `… ERROR target: message`; with colours (tracing's default, even into a
        // file) the level is wrapped in escape codes and `errors_logged` would never see it.
        cmd.env("OPENTRAIL_LOG", &opts.log_filter).env("NO_COLOR", "1").stdout(Stdio::piped()).stderr(log);
        let child = cmd.spawn().map_err(io("start", &opts.bin))?;
        // From here on, an error drops `server`, which kills the child.
        let mut server = Server {
            process: Process { child, stderr_log, log_start },
            addr: String::new(),
            endpoint: String::new(),
            https_endpoint: None,
            gateways: Vec::new(),
            data_dir: opts.data_dir.clone(),
            config: opts.config.clone(),
        };
        let stdout = server.process.child.stdout.take().ok_or_else(|| server.exited())?;
        let mut lines = BufReader::new(stdout).lines();
        server.addr = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(rest) = line.strip_prefix("opentrail listening on http://") {
                        break rest.trim().to_string();
                    }
                }
                _ => return Err(server.exited()),
            }
        };
        server.endpoint = format!("http://{}", server.addr);
        // With `[tls]` configured the next line names the HTTPS listener.
        let config_text = opts.config.as_ref().and_then(|c| std::fs::read_to_string(c).ok());
        let gateways = config_text.as_deref().map_or(0, |t| t.matches("[[gateways]]").count());
        if config_text.as_deref().is_some_and(|t| t.contains("[tls]")) {
            server.https_endpoint = Some(match lines.next() {
                Some(Ok(line)) if line.starts_with("opentrail listening on https://") => {
                    line.trim_start_matches("opentrail listening on ").trim().to_string()
                }
                other => return Err(HarnessError::NoHttpsLine { line: other.and_then(Result::ok) }),
            });
        }
        // Then one line per gateway: `opentrail gateway NAME listening on http://ADDR`.
        for _ in 0..gateways {
            let line = lines.next().and_then(Result::ok);
            let parsed = line.as_deref().and_then(|l| {
                let rest = l.strip_prefix("opentrail gateway ")?;
                let (name, url) = rest.split_once(" listening on ")?;
                Some((name.to_string(), url.trim().to_string()))
            });
            match parsed {
                Some(g) => server.gateways.push(g),
                None => return Err(HarnessError::NoGatewayLine { line }),
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(server)
    }

    /// The endpoint of the in-server gateway `name`.
    pub fn gateway(&self, name: &str) -> Option<&str> {
        self.gateways.iter().find(|(n, _)| n == name).map(|(_, e)| e.as_str())
    }

    fn exited(&self) -> HarnessError {
        HarnessError::ExitedBeforeListening { log: self.stderr() }
    }
}

/// How to start `opentrail gateway` (its own process).
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    pub bin: PathBuf,
    /// The opentrail server records go to.
    pub endpoint: String,
    pub upstream: String,
    /// `--listen`; port 0 picks a free port, read back from the gateway's "listening" line.
    pub listen: String,
    pub config: Option<PathBuf>,
    /// `--kind`: `aws` or `http`.
    pub kind: Option<String>,
    pub spool: Option<PathBuf>,
    /// The credentials the gateway signs its records with (a writer key suffices).
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Where its stderr goes (appended across restarts).
    pub log_file: PathBuf,
    pub log_filter: String,
}

impl GatewayOptions {
    /// `bin gateway --endpoint endpoint --upstream upstream --listen 127.0.0.1:0`, logging at info into `log_file`.
    pub fn new(bin: &Path, endpoint: &str, upstream: &str, key: (&str, &str), log_file: &Path) -> GatewayOptions {
        GatewayOptions {
            bin: bin.to_path_buf(),
            endpoint: endpoint.to_string(),
            upstream: upstream.to_string(),
            listen: "127.0.0.1:0".to_string(),
            config: None,
            kind: None,
            spool: None,
            access_key_id: key.0.to_string(),
            secret_access_key: key.1.to_string(),
            log_file: log_file.to_path_buf(),
            log_filter: "info".to_string(),
        }
    }
}

/// A running `opentrail gateway`; SIGKILLed when dropped unless stopped first.
pub struct GatewayProcess {
    process: Process,
    /// `host:port` it listens on.
    pub addr: String,
    /// `http://` + `addr`.
    pub endpoint: String,
}

impl GatewayProcess {
    /// Starts the gateway and waits for its "opentrail gateway listening on http://" line.
    pub fn spawn(opts: &GatewayOptions) -> Result<GatewayProcess, HarnessError> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&opts.log_file);
        let log = log.map_err(io("open", &opts.log_file))?;
        let log_start = log.metadata().map_err(io("stat", &opts.log_file))?.len();
        let mut cmd = Command::new(&opts.bin);
        cmd.arg("gateway")
            .arg("--endpoint")
            .arg(&opts.endpoint)
            .arg("--upstream")
            .arg(&opts.upstream)
            .arg("--listen")
            .arg(&opts.listen);
        if let Some(c) = &opts.config {
            cmd.arg("--config").arg(c);
        }
        if let Some(k) = &opts.kind {
            cmd.arg("--kind").arg(k);
        }
        if let Some(s) = &opts.spool {
            cmd.arg("--spool").arg(s);
        }
        cmd.env("AWS_ACCESS_KEY_ID", &opts.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &opts.secret_access_key)
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .env("OPENTRAIL_LOG", &opts.log_filter)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(log);
        let child = cmd.spawn().map_err(io("start", &opts.bin))?;
        let mut gw = GatewayProcess {
            process: Process { child, stderr_log: opts.log_file.clone(), log_start },
            addr: String::new(),
            endpoint: String::new(),
        };
        let stdout = gw.process.child.stdout.take().ok_or_else(|| gw.exited())?;
        let mut lines = BufReader::new(stdout).lines();
        gw.addr = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(rest) = line.strip_prefix("opentrail gateway listening on http://") {
                        break rest.trim().to_string();
                    }
                }
                _ => return Err(gw.exited()),
            }
        };
        gw.endpoint = format!("http://{}", gw.addr);
        std::thread::spawn(move || for _ in lines {});
        Ok(gw)
    }

    fn exited(&mut self) -> HarnessError {
        self.kill();
        HarnessError::GatewayExited { log: self.stderr() }
    }
}

/// A child process started by the harness (a server or a gateway) with its stderr appended to a log file:
/// what it logged, and stopping it. Dropping it kills the child. `Server` and `GatewayProcess` dereference
/// to it.
#[derive(Debug)]
pub struct Process {
    child: Child,
    stderr_log: PathBuf,
    /// Length of `stderr_log` when this process started: what it logged starts there (restarts on the same
    /// log file append to it).
    log_start: u64,
}

impl Process {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What this process wrote to stderr so far (not what earlier processes on the same log file wrote).
    pub fn stderr(&self) -> String {
        let mut bytes = Vec::new();
        if let Ok(mut f) = std::fs::File::open(&self.stderr_log)
            && f.seek(SeekFrom::Start(self.log_start)).is_ok()
        {
            let _ = f.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The lines this process logged at ERROR level.
    pub fn errors_logged(&self) -> Vec<String> {
        self.stderr().lines().filter(|l| l.contains(" ERROR ")).map(str::to_string).collect()
    }

    /// SIGKILL and wait, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait: a graceful stop.
    pub fn stop(&mut self) {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

macro_rules! deref_to_process {
    ($t:ty) => {
        impl std::ops::Deref for $t {
            type Target = Process;
            fn deref(&self) -> &Process {
                &self.process
            }
        }
        impl std::ops::DerefMut for $t {
            fn deref_mut(&mut self) -> &mut Process {
                &mut self.process
            }
        }
    };
}
deref_to_process!(Server);
deref_to_process!(GatewayProcess);

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> HarnessError {
    let path = path.to_path_buf();
    move |source| HarnessError::Io { op, path, source }
}

/// VmHWM and VmRSS of a process, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct Rss {
    pub hwm: u64,
    pub rss: u64,
}

/// VmHWM and VmRSS of process `pid`, read from `/proc/<pid>/status`.
pub fn rss(pid: u32) -> Result<Rss, HarnessError> {
    let path = PathBuf::from(format!("/proc/{pid}/status"));
    let status = std::fs::read_to_string(&path).map_err(io("read", &path))?;
    let field = |field: &'static str| -> Result<u64, HarnessError> {
        let kb = status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok());
        kb.map(|kb| kb * 1024).ok_or(HarnessError::ProcStatus { pid, field })
    };
    Ok(Rss { hwm: field("VmHWM:")?, rss: field("VmRSS:")? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_of_a_live_process_is_read_from_proc() {
        let r = rss(std::process::id()).unwrap();
        assert!(r.rss > 0 && r.hwm >= r.rss, "{r:?}");
    }

    /// A stand-in for `opentrail serve` that logs one ERROR line, says it listens, and waits.
    fn fake_server(dir: &Path) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let bin = dir.join("fake-opentrail");
        let script = "#!/bin/sh\necho '2020-01-01T00:00:00Z ERROR fake: boom' >&2\n\
                      echo 'opentrail listening on http://127.0.0.1:9'\nexec sleep 30\n";
        std::fs::write(&bin, script).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        bin
    }

    #[test]
    fn errors_logged_are_this_servers_only_across_restarts_on_one_data_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let opts = ServeOptions::new(&fake_server(tmp.path()), &tmp.path().join("data"));
        let mut first = Server::spawn(&opts).unwrap();
        assert_eq!(first.endpoint, "http://127.0.0.1:9");
        assert_eq!(first.errors_logged(), vec!["2020-01-01T00:00:00Z ERROR fake: boom".to_string()]);
        first.kill();
        let second = Server::spawn(&opts).unwrap();
        assert_eq!(second.errors_logged().len(), 1, "{:?}", second.errors_logged());
        assert_eq!(std::fs::read_to_string(tmp.path().join("data.stderr.log")).unwrap().lines().count(), 2);
    }

    #[test]
    fn a_binary_that_never_listens_is_an_error_carrying_its_stderr() {
        let tmp = tempfile::tempdir().unwrap();
        // `sh serve …` fails at once, writing why to stderr.
        let err = Server::spawn(&ServeOptions::new(Path::new("sh"), &tmp.path().join("data"))).err().unwrap();
        assert!(matches!(&err, HarnessError::ExitedBeforeListening { log } if log.contains("serve")), "{err}");
    }
}
