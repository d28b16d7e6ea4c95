//! The gateway's counters, rendered as `opentrail_gateway_*{gateway="<name>"}` in the Prometheus text
//! format: on the server's `/metrics` for `[[gateways]]`, on `/.opentrail/metrics` of a standalone gateway.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

#[derive(Debug, Default)]
pub struct GatewayMetrics {
    /// Calls received.
    pub calls: AtomicU64,
    /// Calls recorded (a record was made durable or spooled).
    pub recorded: AtomicU64,
    /// Calls the capture policy said not to record (level None).
    pub not_recorded: AtomicU64,
    /// Request body bytes forwarded upstream.
    pub bytes_in: AtomicU64,
    /// Response body bytes sent back to clients.
    pub bytes_out: AtomicU64,
    /// Calls refused with 503 before forwarding: the journal (or spool) was known to be unavailable.
    pub refused: AtomicU64,
    /// Records that could not be written after the upstream answered: the client got 503.
    pub record_failures: AtomicU64,
    /// 502: the upstream could not be reached or broke off.
    pub upstream_unreachable: AtomicU64,
    /// 504: the upstream did not answer in time.
    pub upstream_timeouts: AtomicU64,
    /// Records waiting in the spool (spool mode).
    pub spool_depth: AtomicU64,
    /// Spooled records the server refused as invalid (dropped from the spool, logged).
    pub spool_rejected: AtomicU64,
}

impl GatewayMetrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub fn render(&self, gateway: &str, out: &mut String) {
        let rows: [(&str, &str, &str, &AtomicU64); 11] = [
            ("opentrail_gateway_calls_total", "counter", "calls received", &self.calls),
            ("opentrail_gateway_recorded_total", "counter", "calls recorded", &self.recorded),
            ("opentrail_gateway_not_recorded_total", "counter", "calls the policy left unrecorded", &self.not_recorded),
            ("opentrail_gateway_request_bytes_total", "counter", "request body bytes forwarded", &self.bytes_in),
            ("opentrail_gateway_response_bytes_total", "counter", "response body bytes returned", &self.bytes_out),
            (
                "opentrail_gateway_refused_total",
                "counter",
                "calls refused 503 unforwarded: journal down",
                &self.refused,
            ),
            (
                "opentrail_gateway_record_failures_total",
                "counter",
                "records not written after the upstream answered (503 to the client)",
                &self.record_failures,
            ),
            ("opentrail_gateway_upstream_unreachable_total", "counter", "502 answers", &self.upstream_unreachable),
            ("opentrail_gateway_upstream_timeouts_total", "counter", "504 answers", &self.upstream_timeouts),
            ("opentrail_gateway_spool_depth", "gauge", "records waiting in the spool", &self.spool_depth),
            ("opentrail_gateway_spool_rejected_total", "counter", "spooled records refused", &self.spool_rejected),
        ];
        for (name, kind, help, v) in rows {
            exposition::header(out, name, kind, help);
            exposition::sample(out, name, &[("gateway", gateway)], v.load(Relaxed));
        }
    }
}
