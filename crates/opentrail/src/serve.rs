//! `opentrail serve`: load the config (or generate an admin key on a fresh install), open the store,
//! and serve until SIGINT/SIGTERM.

use std::io::{IsTerminal, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use client::profile_credential;
use rand::Rng;
use service::{Config, EventStore, Metrics, PrincipalConfig, Role, StoreOptions};

/// Where HTTPS listens when `[tls]` names no `listen`.
const DEFAULT_TLS_LISTEN: &str = "127.0.0.1:4591";

/// Profile name of the generated admin key in `<data-dir>/credentials`.
const GENERATED_PROFILE: &str = "opentrail";

pub fn run(
    config: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    listen: Option<String>,
) -> Result<std::process::ExitCode> {
    init_logging();
    // Everything the server creates (journal, index, state files, keys, credentials) is private to its
    // user: files 0600, folders 0700. Files and keys holding secrets also get explicit modes.
    // SAFETY: umask(2) only sets the process's file-mode creation mask.
    unsafe {
        libc::umask(0o077);
    }
    let fd_limit = raise_fd_limit();
    let mut cfg = match &config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let data_dir = data_dir.or(cfg.data_dir.clone()).unwrap_or_else(|| PathBuf::from("opentrail-data"));
    let listen = listen.or(cfg.listen.clone()).unwrap_or_else(|| crate::DEFAULT_LISTEN.to_string());
    // Load the certificate before binding anything, so a bad file fails the start with its name.
    let tls = match &cfg.tls {
        Some(t) => {
            let server_config = api::load_server_config(&t.cert_file, &t.key_file)?;
            Some((t.listen.clone().unwrap_or_else(|| DEFAULT_TLS_LISTEN.to_string()), server_config))
        }
        None => None,
    };
    let mut gateway_cfgs = Vec::new();
    for (i, table) in cfg.gateways.iter().enumerate() {
        let mut g = gateway::GatewayConfig::from_table(table, &format!("gateways[{i}]."))?;
        // The server's own principals are known callers of every gateway (their secrets are not used).
        g.principals.extend(cfg.principals.iter().map(|p| gateway::config::IdentityConfig {
            access_key_id: p.access_key_id.clone(),
            identity_type: p.principal_type.clone(),
            user_name: p.user_name.clone(),
            role_name: p.role_name.clone(),
            session_name: p.session_name.clone(),
            account_id: p.account_id.clone(),
            secret_access_key: None,
            role: None,
            policy: None,
        }));
        let tls = match (&g.tls_cert_file, &g.tls_key_file) {
            (Some(c), Some(k)) => Some(api::load_server_config(c, k)?),
            _ => None,
        };
        gateway_cfgs.push((g, tls));
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    // Bind before anything is written to the data dir: a port in use fails the start with nothing created.
    let (listener, tls, gateway_listeners) = rt.block_on(async {
        let listener = api::listener::bind(&listen).await.with_context(|| format!("listen on {listen}"))?;
        let tls = match tls {
            Some((tls_listen, server_config)) => {
                let l = api::listener::bind(&tls_listen)
                    .await
                    .with_context(|| format!("listen (https) on {tls_listen}"))?;
                Some((l, server_config))
            }
            None => None,
        };
        let mut gateway_listeners = Vec::new();
        for (g, _) in &gateway_cfgs {
            let addr = g.listen.as_deref().unwrap_or_default();
            let l =
                api::listener::bind(addr).await.with_context(|| format!("listen (gateway {}) on {addr}", g.name))?;
            gateway_listeners.push(l);
        }
        Ok::<_, anyhow::Error>((listener, tls, gateway_listeners))
    })?;
    let (listener, tls, gateway_listeners) = (listener, tls, gateway_listeners);
    create_data_dir(&data_dir)?;
    if cfg.principals.is_empty() {
        let p = generated_admin(&data_dir)?;
        cfg.principals.push(p);
    }
    let metrics = Arc::new(Metrics::default());
    let started = std::time::Instant::now();
    let mut store_opts = StoreOptions::new(&data_dir);
    store_opts.max_queued_bytes = cfg.journal_max_queued_bytes;
    if let Some(lag) = cfg.max_index_lag_events {
        store_opts.max_index_lag = lag;
    }
    let store = EventStore::open(store_opts, metrics).context("open event store")?;
    tracing::info!(
        data_dir = %data_dir.display(),
        durable_seq = ?store.durable_seq(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "store open"
    );
    let app = Arc::new(api::App::open(store.clone(), cfg, &data_dir, api::system_clock())?);
    let limits = api::ConnectionLimits::from_config(&app.config.server);
    if let Some(fds) = fd_limit
        && (limits.max_connections as u64).saturating_add(FD_HEADROOM) > fds
    {
        tracing::warn!(
            max_connections = limits.max_connections,
            open_files_limit = fds,
            "server.max_connections is near the open-files limit: accepts may fail before connections are refused"
        );
    }
    let door = api::FrontDoor::new(limits, store.metrics().clone());
    let store_metrics = store.metrics().clone();
    app.start_delivery(rt.handle().clone())?;
    app.start_insights()?;
    app.start_lake()?;
    app.start_key_schedule(rt.handle());
    let defaults = gateway::Defaults { account_id: app.config.account_id.clone(), region: app.config.region.clone() };
    let gateways = {
        let _rt = rt.enter();
        let mut gws = Vec::new();
        for (g, tls) in gateway_cfgs {
            let target = gateway::Target::Store { store: store.clone(), gateway: g.name.clone() };
            let gw = gateway::Gateway::new(&g, &defaults, target).with_context(|| format!("gateway {}", g.name))?;
            gws.push((gw, tls));
        }
        gws
    };
    if !gateways.is_empty() {
        let rendered: Vec<gateway::Gateway> = gateways.iter().map(|(g, _)| g.clone()).collect();
        let _ = app.extra_metrics.set(Box::new(move |out: &mut String| {
            for g in &rendered {
                g.render_metrics(out);
            }
        }));
    }
    let app_for_stop = app.clone();
    rt.block_on(async move {
        let addr = listener.local_addr()?;
        // Tests and scripts read these lines to find the ports: http first, then https when configured.
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "opentrail listening on http://{addr}")?;
        if let Some((l, _)) = &tls {
            writeln!(stdout, "opentrail listening on https://{}", l.local_addr()?)?;
        }
        for ((g, tls), l) in gateways.iter().zip(&gateway_listeners) {
            let scheme = if tls.is_some() { "https" } else { "http" };
            writeln!(stdout, "opentrail gateway {} listening on {scheme}://{}", g.name(), l.local_addr()?)?;
        }
        stdout.flush()?;
        drop(stdout);
        tracing::info!(%addr, https = tls.is_some(), "serving");
        // One signal stops every listener.
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = stop_tx.send(true);
        });
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let mut gateway_tasks = Vec::new();
        for ((g, tls), l) in gateways.into_iter().zip(gateway_listeners) {
            // Each gateway has its own connection limit: proxied traffic never starves the API.
            let gdoor = api::FrontDoor::new(limits, store_metrics.clone());
            let stop = stopped(stop_rx.clone());
            gateway_tasks.push(tokio::spawn(async move { gdoor.serve(l, tls, g.router(), stop).await }));
        }
        let http = door.serve(listener, None, api::router(app.clone()), stopped(stop_rx.clone()));
        match tls {
            Some((l, server_config)) => {
                let https = door.serve(l, Some(server_config), api::router(app), stopped(stop_rx));
                tokio::try_join!(http, https)?;
            }
            None => http.await?,
        }
        for t in gateway_tasks {
            t.await??;
        }
        Ok::<_, anyhow::Error>(())
    })?;
    app_for_stop.stop_background();
    store.shutdown();
    tracing::info!("stopped");
    Ok(std::process::ExitCode::SUCCESS)
}

/// Hard-coded: file descriptors the server needs besides its connections (journal segments, index
/// files, listeners, logs), for the warning when `max_connections` comes close to the limit.
const FD_HEADROOM: u64 = 256;

/// Raises the soft open-files limit to the hard limit (a default soft limit of 1024 would refuse
/// connections long before `max_connections`); returns the limit now in force.
fn raise_fd_limit() -> Option<u64> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "cannot read the open-files limit");
        return None;
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            tracing::debug!(from = lim.rlim_cur, to = lim.rlim_max, "raised the open-files limit");
            return Some(lim.rlim_max);
        }
        tracing::warn!(error = %std::io::Error::last_os_error(), "cannot raise the open-files limit");
    }
    Some(lim.rlim_cur)
}

pub(crate) async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(%e, "cannot listen for SIGTERM");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
    tracing::info!("shutting down");
}

/// The data dir, created if missing, and made 0700 whatever it was.
fn create_data_dir(data_dir: &Path) -> Result<()> {
    std::fs::create_dir_all(data_dir).with_context(|| format!("create data dir {}", data_dir.display()))?;
    std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("make data dir {} private (0700)", data_dir.display()))
}

/// Logs to stderr: `OPENTRAIL_LOG` is the filter (default `info`), `OPENTRAIL_LOG_FORMAT=json` writes JSON
/// lines; colour codes only when stderr is a terminal and `NO_COLOR` is not set.
pub(crate) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("OPENTRAIL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    if std::env::var("OPENTRAIL_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// The admin key of a config-less install: read from `<data-dir>/credentials`, generated (mode 0600)
/// on first start. The file is an AWS shared-credentials file, so the aws CLI can use it directly.
fn generated_admin(data_dir: &Path) -> Result<PrincipalConfig> {
    let path = data_dir.join("credentials");
    let (id, secret, fresh) = match std::fs::read_to_string(&path) {
        Ok(text) => {
            let cred = profile_credential(&text, GENERATED_PROFILE, &path)?;
            (cred.access_key_id, cred.secret_access_key, false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut rng = rand::rng();
            let id_chars = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
            let secret_chars = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            let id: String =
                "AKIA".chars().chain((0..16).map(|_| id_chars[rng.random_range(0..id_chars.len())] as char)).collect();
            let secret: String =
                (0..40).map(|_| secret_chars[rng.random_range(0..secret_chars.len())] as char).collect();
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("create {}", path.display()))?;
            writeln!(f, "[{GENERATED_PROFILE}]\naws_access_key_id = {id}\naws_secret_access_key = {secret}")?;
            f.sync_all()?;
            (id, secret, true)
        }
        Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
    };
    // Straight to stderr, never through the log: the secret is shown once, on the start that generated it,
    // and only to a terminal (a log collector reading stderr never sees it; the file has it).
    let mut err = std::io::stderr().lock();
    let use_it = format!("export AWS_SHARED_CREDENTIALS_FILE={} AWS_PROFILE={GENERATED_PROFILE}", path.display());
    let _ = if fresh && err.is_terminal() {
        writeln!(
            err,
            "opentrail: no principals configured; generated an admin key into {} (mode 0600). Its secret is shown \
             this once:\n  export AWS_ACCESS_KEY_ID={id} AWS_SECRET_ACCESS_KEY={secret}\nor\n  {use_it}",
            path.display()
        )
    } else if fresh {
        writeln!(
            err,
            "opentrail: no principals configured; generated an admin key into {} (mode 0600): access key \
             {id}, its secret in that file (not printed: stderr is not a terminal). Use it with:\n  {use_it}",
            path.display()
        )
    } else {
        writeln!(
            err,
            "opentrail: no principals configured; using the admin key {id} in {}. Use it with:\n  {use_it}",
            path.display()
        )
    };
    drop(err);
    Ok(PrincipalConfig {
        access_key_id: id,
        secret_access_key: secret,
        user_name: Some("admin".to_string()),
        principal_type: None,
        role_name: None,
        session_name: None,
        role: Role::Admin,
        policy: None,
        account_id: None,
    })
}

/// `opentrail check`: opens the store (which replays the journal into the index) and verifies them.
pub fn check(data_dir: &Path) -> Result<std::process::ExitCode> {
    let store =
        EventStore::open(StoreOptions::new(data_dir), Arc::new(Metrics::default())).context("open event store")?;
    let report = store.check().context("check")?;
    store.shutdown();
    let mut out = std::io::stdout().lock();
    writeln!(out, "journal records: {}\nindexed events:  {}", report.journal_records, report.indexed)?;
    for p in &report.problems {
        writeln!(out, "PROBLEM: {p}")?;
    }
    if report.problems.is_empty() {
        writeln!(out, "ok: the index agrees with the journal")?;
        Ok(std::process::ExitCode::SUCCESS)
    } else {
        Ok(std::process::ExitCode::FAILURE)
    }
}
