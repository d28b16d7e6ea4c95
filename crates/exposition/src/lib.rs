//! The Prometheus text exposition format (version 0.0.4), the few line shapes opentrail writes: a family's
//! `# HELP` / `# TYPE` header, samples with or without labels. Shared by the service's metrics and the
//! views' registry so every family on `/metrics` is written the same way.
//!
//! Why no metrics crate: the exposition format needs four line shapes; a registry would only add
//! indirection.

use std::fmt::{Display, Write};

/// The `# HELP` and `# TYPE` lines of a metric family (written once per family, before its samples).
pub fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A counter without labels: its header and its one sample.
pub fn counter(out: &mut String, name: &str, help: &str, v: u64) {
    header(out, name, "counter", help);
    let _ = writeln!(out, "{name} {v}");
}

/// A gauge without labels: its header and its one sample.
pub fn gauge(out: &mut String, name: &str, help: &str, v: impl Display) {
    header(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {v}");
}

/// One sample with labels (values escaped), e.g. `opentrail_view_lag_events{view="index"} 0`.
pub fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], v: impl Display) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, val)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape(val));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {v}");
}

/// A label value escaped for the text format (backslash, double quote, newline).
pub fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_headers_and_labelled_samples_with_escaped_values() {
        let mut out = String::new();
        header(&mut out, "x_total", "counter", "Things.");
        sample(&mut out, "x_total", &[("view", "trail:\"a\"\n"), ("k", "v")], 3);
        sample(&mut out, "x_total", &[], 4);
        assert_eq!(
            out,
            "# HELP x_total Things.\n# TYPE x_total counter\nx_total{view=\"trail:\\\"a\\\"\\n\",k=\"v\"} 3\nx_total 4\n"
        );
    }
}
