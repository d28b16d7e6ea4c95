//! Counters and gauges of the service, rendered in the Prometheus text exposition format.
//! The line shapes are the `exposition` crate's, shared with the views' registry.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use exposition::{counter, escape, gauge, header};
use parking_lot::Mutex;

#[derive(Debug, Default)]
pub struct Metrics {
    pub events_ingested: AtomicU64,
    pub events_duplicate: AtomicU64,
    /// Rejected records by error code.
    rejected: Mutex<std::collections::BTreeMap<String, u64>>,
    /// Requests refused with 503 because the journal was saturated, full or failed.
    pub backpressure_rejections: AtomicU64,
    pub lookups: AtomicU64,
    pub index_lag_events: AtomicU64,
    pub index_applied_events: AtomicU64,
    pub index_replay_parse_failures: AtomicU64,
    /// API requests by (operation, outcome code).
    requests: Mutex<std::collections::BTreeMap<(String, String), u64>>,
    /// Audit records of API calls by outcome (see [`AuditOutcome`]).
    audit: Mutex<std::collections::BTreeMap<&'static str, u64>>,
    /// The front door: connections, timeouts, body memory.
    pub front_door: FrontDoorMetrics,
}

/// What became of the audit record of one API call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditOutcome {
    /// Durable before the call's effect was applied or acknowledged.
    Durable,
    /// Queued for the next group commit before a read (or a failed call) was answered.
    Queued,
    /// Could not be written, so the call was refused (503) and changed nothing.
    Refused,
    /// Queued, answered, then its group commit failed: the call happened without a record.
    Lost,
    /// Could not be written, and the call (a read) was answered anyway because `[audit] fail_open_reads`.
    FailedOpen,
    /// Some request parameters or response elements did not fit and were cut (counted besides the above).
    Truncated,
    /// Written durably, but the call's effect then failed: the record claims a change that did not happen.
    EffectFailedAfterAudit,
}

impl AuditOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Durable => "durable",
            AuditOutcome::Queued => "queued",
            AuditOutcome::Refused => "refused",
            AuditOutcome::Lost => "lost",
            AuditOutcome::FailedOpen => "failed_open",
            AuditOutcome::Truncated => "truncated",
            AuditOutcome::EffectFailedAfterAudit => "effect_failed_after_audit",
        }
    }
}

/// Why the front door cut a connection or a request short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutKind {
    /// The request head did not arrive in time.
    Header,
    /// No request in flight for the idle timeout.
    Idle,
    /// Writes made no progress for the idle timeout (the client stopped reading).
    Send,
    /// The request body did not arrive in time.
    Body,
    /// The TLS handshake did not complete in time.
    TlsHandshake,
}

impl TimeoutKind {
    /// In declaration order, so `kind as usize` indexes it.
    const ALL: [TimeoutKind; 5] =
        [TimeoutKind::Header, TimeoutKind::Idle, TimeoutKind::Send, TimeoutKind::Body, TimeoutKind::TlsHandshake];

    pub fn label(self) -> &'static str {
        match self {
            TimeoutKind::Header => "header",
            TimeoutKind::Idle => "idle",
            TimeoutKind::Send => "send",
            TimeoutKind::Body => "body",
            TimeoutKind::TlsHandshake => "tls_handshake",
        }
    }
}

/// Connection and body figures of the HTTP front door.
#[derive(Debug, Default)]
pub struct FrontDoorMetrics {
    /// Connections being served (HTTP and HTTPS).
    pub connections_open: AtomicU64,
    /// Connections accepted and closed at once because `max_connections` were open.
    pub connections_refused: AtomicU64,
    /// Timeouts, indexed by `TimeoutKind as usize`.
    timeouts: [AtomicU64; 5],
    /// Request body bytes held in memory now (the body memory budget in use).
    pub body_bytes_held: AtomicU64,
    /// Requests answered 503 because the body memory budget was exhausted.
    pub body_budget_exhausted: AtomicU64,
}

impl FrontDoorMetrics {
    pub fn record_timeout(&self, kind: TimeoutKind) {
        self.timeouts[kind as usize].fetch_add(1, Relaxed);
    }

    pub fn timeouts(&self, kind: TimeoutKind) -> u64 {
        self.timeouts[kind as usize].load(Relaxed)
    }

    fn render(&self, out: &mut String) {
        gauge(out, "opentrail_connections_open", "Connections being served.", self.connections_open.load(Relaxed));
        counter(
            out,
            "opentrail_connections_refused_total",
            "Connections closed at once because max_connections were open.",
            self.connections_refused.load(Relaxed),
        );
        header(out, "opentrail_timeouts_total", "counter", "Connections and requests cut short, by what timed out.");
        for (kind, n) in TimeoutKind::ALL.iter().zip(&self.timeouts) {
            let _ = writeln!(out, "opentrail_timeouts_total{{kind=\"{}\"}} {}", kind.label(), n.load(Relaxed));
        }
        gauge(
            out,
            "opentrail_body_bytes_held",
            "Request body bytes held in memory (the body memory budget in use).",
            self.body_bytes_held.load(Relaxed),
        );
        counter(
            out,
            "opentrail_body_budget_exhausted_total",
            "Requests answered 503 because the body memory budget was exhausted.",
            self.body_budget_exhausted.load(Relaxed),
        );
    }
}

/// Journal figures rendered next to the service's own.
#[derive(Debug, Default, Clone)]
pub struct JournalFigures {
    pub bytes_on_disk: u64,
    pub records: u64,
    pub queued_bytes: u64,
    pub fsyncs: u64,
    pub fsync_seconds_sum: f64,
    /// (upper bound in seconds, cumulative count).
    pub fsync_buckets: Vec<(f64, u64)>,
    pub poisoned: bool,
}

impl Metrics {
    pub fn record_rejected(&self, code: &str, n: u64) {
        *self.rejected.lock().entry(code.to_string()).or_default() += n;
    }

    pub fn record_request(&self, operation: &str, outcome: &str) {
        *self.requests.lock().entry((operation.to_string(), outcome.to_string())).or_default() += 1;
    }

    pub fn record_audit(&self, outcome: AuditOutcome) {
        *self.audit.lock().entry(outcome.as_str()).or_default() += 1;
    }

    pub fn rejected_total(&self) -> u64 {
        self.rejected.lock().values().sum()
    }

    pub fn render(&self, journal: &JournalFigures) -> String {
        let mut buf = String::with_capacity(4096);
        let out = &mut buf;
        counter(
            out,
            "opentrail_events_ingested_total",
            "Records acknowledged durable.",
            self.events_ingested.load(Relaxed),
        );
        counter(
            out,
            "opentrail_events_duplicate_total",
            "Records skipped because their eventID was already stored.",
            self.events_duplicate.load(Relaxed),
        );
        counter(
            out,
            "opentrail_backpressure_rejections_total",
            "Requests answered 503 because the journal could not take them.",
            self.backpressure_rejections.load(Relaxed),
        );
        counter(out, "opentrail_lookups_total", "Lookups served.", self.lookups.load(Relaxed));
        counter(
            out,
            "opentrail_index_applied_events_total",
            "Records applied to the event-history index.",
            self.index_applied_events.load(Relaxed),
        );
        counter(
            out,
            "opentrail_index_replay_parse_failures_total",
            "Journal records the index could not parse on replay.",
            self.index_replay_parse_failures.load(Relaxed),
        );
        counter(out, "opentrail_journal_fsyncs_total", "Group commits fsync'd.", journal.fsyncs);
        header(out, "opentrail_events_rejected_total", "counter", "Records rejected, by error code.");
        for (code, n) in self.rejected.lock().iter() {
            let _ = writeln!(out, "opentrail_events_rejected_total{{code=\"{}\"}} {n}", escape(code));
        }
        header(out, "opentrail_api_requests_total", "counter", "API requests by operation and outcome.");
        for ((op, outcome), n) in self.requests.lock().iter() {
            let _ = writeln!(
                out,
                "opentrail_api_requests_total{{operation=\"{}\",outcome=\"{}\"}} {n}",
                escape(op),
                escape(outcome)
            );
        }
        header(out, "opentrail_audit_records_total", "counter", "Audit records of API calls, by outcome.");
        for (outcome, n) in self.audit.lock().iter() {
            let _ = writeln!(out, "opentrail_audit_records_total{{outcome=\"{outcome}\"}} {n}");
        }
        gauge(
            out,
            "opentrail_index_lag_events",
            "Durable records not yet visible in lookups.",
            self.index_lag_events.load(Relaxed) as f64,
        );
        gauge(out, "opentrail_journal_bytes", "Bytes of journal segments on disk.", journal.bytes_on_disk as f64);
        gauge(out, "opentrail_journal_records", "Records in the journal.", journal.records as f64);
        gauge(
            out,
            "opentrail_journal_queued_bytes",
            "Bytes waiting for the next group commit.",
            journal.queued_bytes as f64,
        );
        gauge(
            out,
            "opentrail_journal_poisoned",
            "1 when a failed fsync stopped writes.",
            journal.poisoned as u8 as f64,
        );
        header(out, "opentrail_journal_fsync_seconds", "histogram", "Latency of group-commit fsyncs.");
        for (le, n) in &journal.fsync_buckets {
            let _ = writeln!(out, "opentrail_journal_fsync_seconds_bucket{{le=\"{le}\"}} {n}");
        }
        let _ = writeln!(out, "opentrail_journal_fsync_seconds_bucket{{le=\"+Inf\"}} {}", journal.fsyncs);
        let _ = writeln!(out, "opentrail_journal_fsync_seconds_sum {}", journal.fsync_seconds_sum);
        let _ = writeln!(out, "opentrail_journal_fsync_seconds_count {}", journal.fsyncs);
        self.front_door.render(out);
        buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_labels_and_histogram() {
        let m = Metrics::default();
        m.events_ingested.fetch_add(3, Relaxed);
        m.record_rejected("MissingField", 2);
        m.record_request("LookupEvents", "200");
        let j = JournalFigures { fsyncs: 4, fsync_buckets: vec![(0.005, 1), (0.01, 4)], ..Default::default() };
        let text = m.render(&j);
        assert!(text.contains("opentrail_events_ingested_total 3\n"));
        assert!(text.contains("opentrail_events_rejected_total{code=\"MissingField\"} 2\n"));
        assert!(text.contains("opentrail_api_requests_total{operation=\"LookupEvents\",outcome=\"200\"} 1\n"));
        assert!(text.contains("opentrail_journal_fsync_seconds_bucket{le=\"0.01\"} 4\n"));
        assert!(text.contains("opentrail_journal_fsync_seconds_count 4\n"));
    }

    #[test]
    fn renders_front_door_figures() {
        let m = Metrics::default();
        m.front_door.connections_open.store(3, Relaxed);
        m.front_door.record_timeout(TimeoutKind::Idle);
        m.front_door.record_timeout(TimeoutKind::Idle);
        m.front_door.record_timeout(TimeoutKind::TlsHandshake);
        let text = m.render(&JournalFigures::default());
        assert!(text.contains("opentrail_connections_open 3\n"), "{text}");
        assert!(text.contains("opentrail_timeouts_total{kind=\"idle\"} 2\n"), "{text}");
        assert!(text.contains("opentrail_timeouts_total{kind=\"tls_handshake\"} 1\n"), "{text}");
        assert!(text.contains("opentrail_timeouts_total{kind=\"header\"} 0\n"), "{text}");
        assert_eq!(m.front_door.timeouts(TimeoutKind::Idle), 2);
    }
}
