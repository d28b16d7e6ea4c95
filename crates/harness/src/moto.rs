//! A real S3 server for the tests: moto's `moto.server` (installed with Python), started on 127.0.0.1 on a
//! free port and killed when dropped, with bucket creation (plain or with Object Lock) by a raw request.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::HarnessError;

/// Hard-coded: how long moto may take to start listening (it imports boto and flask first).
const START_DEADLINE: Duration = Duration::from_secs(60);

/// A running `python3 -m moto.server`; SIGKILLed when dropped.
pub struct MotoServer {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl MotoServer {
    /// Starts moto on a free loopback port and waits until it answers.
    pub fn start() -> Result<MotoServer, HarnessError> {
        MotoServer::start_on(free_port()?)
    }

    /// Starts moto on `127.0.0.1:port` (a destination that comes back where it was: the port of a stopped
    /// moto, or one from [`free_port`] a server was pointed at before) and waits until it answers.
    pub fn start_on(port: u16) -> Result<MotoServer, HarnessError> {
        let child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| HarnessError::Moto { reason: format!("start python3 -m moto.server: {source}") })?;
        let addr = format!("127.0.0.1:{port}");
        let mut server = MotoServer { child, endpoint: format!("http://{addr}"), addr };
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(HarnessError::Moto { reason: format!("moto exited before listening: {status}") });
            }
            if server.request("GET", "/moto-api/", &[]).is_ok() {
                return Ok(server);
            }
            if started.elapsed() > START_DEADLINE {
                return Err(HarnessError::Moto { reason: format!("moto did not listen on {} in time", server.addr) });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Creates `bucket` (with Object Lock enabled when `object_lock`). moto does not check signatures.
    pub fn create_bucket(&self, bucket: &str, object_lock: bool) -> Result<(), HarnessError> {
        let headers: &[(&str, &str)] = if object_lock { &[("x-amz-bucket-object-lock-enabled", "true")] } else { &[] };
        let (status, body) = self.request("PUT", &format!("/{bucket}"), headers)?;
        if status != 200 {
            return Err(HarnessError::Moto { reason: format!("create bucket {bucket}: HTTP {status}: {body}") });
        }
        Ok(())
    }

    /// One unsigned HTTP/1.1 request without a body; the status and body of the answer.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Result<(u16, String), HarnessError> {
        let fail = |what: &str, e: std::io::Error| HarnessError::Moto { reason: format!("{what} {}: {e}", self.addr) };
        let mut s = TcpStream::connect(&self.addr).map_err(|e| fail("connect to", e))?;
        s.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| fail("set timeout on", e))?;
        let mut req =
            format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n", self.addr);
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).map_err(|e| fail("write to", e))?;
        let mut reader = BufReader::new(s);
        let mut status_line = String::new();
        reader.read_line(&mut status_line).map_err(|e| fail("read from", e))?;
        let status = status_line.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).map_err(|e| fail("read from", e))?;
        let text = String::from_utf8_lossy(&rest);
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_string();
        Ok((status, body))
    }
}

/// A loopback port the kernel just handed out and we released: free (nothing listens there) unless another
/// process races for it.
pub fn free_port() -> Result<u16, HarnessError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|source| HarnessError::Moto { reason: format!("pick a free port: {source}") })
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
