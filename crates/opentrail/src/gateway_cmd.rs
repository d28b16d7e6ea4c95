//! `opentrail gateway`: an audit gateway in its own process, handing its records to a server through
//! `opentrail-client` (credentials the AWS way), served by the same accept loop as the server.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use gateway::{Defaults, Gateway, GatewayConfig, Kind, Remote, Target};

/// Where the gateway listens when neither the flag nor the config says.
const DEFAULT_GATEWAY_LISTEN: &str = "127.0.0.1:9000";

pub fn run(
    endpoint: &str,
    listen: Option<String>,
    upstream: Option<String>,
    config: Option<PathBuf>,
    kind: Option<Kind>,
    spool: Option<PathBuf>,
) -> Result<std::process::ExitCode> {
    crate::serve::init_logging();
    let mut cfg = match &config {
        Some(path) => GatewayConfig::load(path)?,
        None => GatewayConfig::default(),
    };
    if upstream.is_some() {
        cfg.upstream = upstream;
    }
    if let Some(k) = kind {
        cfg.kind = k;
    }
    if spool.is_some() {
        cfg.spool = spool;
    }
    let listen = listen.or(cfg.listen.clone()).unwrap_or_else(|| DEFAULT_GATEWAY_LISTEN.to_string());
    if cfg.upstream.is_none() {
        anyhow::bail!("no upstream: give --upstream http://HOST:PORT or `upstream` in the config");
    }
    let client = client::Client::new(endpoint).context("the opentrail server's client")?;
    let region = client.region().to_string();
    let tls = match (&cfg.tls_cert_file, &cfg.tls_key_file) {
        (Some(c), Some(k)) => Some(api::load_server_config(c, k)?),
        _ => None,
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let listener = api::listener::bind(&listen).await.with_context(|| format!("listen on {listen}"))?;
        let defaults = Defaults { account_id: cfg.account_id.clone().unwrap_or_else(|| "123456789012".into()), region };
        let gw = Gateway::new(&cfg, &defaults, Target::Remote(Remote::new(client)))?;
        let metrics = Arc::new(service::Metrics::default());
        let door = api::FrontDoor::new(api::ConnectionLimits::from_config(&service::ServerConfig::default()), metrics);
        let addr = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        // Tests and scripts read this line to find the port.
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "opentrail gateway listening on {scheme}://{addr}")?;
        stdout.flush()?;
        drop(stdout);
        tracing::info!(%addr, gateway = gw.name(), upstream = ?cfg.upstream, spool = ?cfg.spool, "gateway serving");
        door.serve(listener, tls, gw.router(), crate::serve::shutdown_signal()).await?;
        tracing::info!("gateway stopped");
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(std::process::ExitCode::SUCCESS)
}
