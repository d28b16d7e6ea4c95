//! How the client subcommands print: `opentrail lookup`'s events as a table fitted to the terminal, CSV or
//! NDJSON, page by page as the pages arrive; and what a closed stdout means (`opentrail … | head`: a quiet,
//! successful end, never a panic — nothing here uses `println!`, which panics on EPIPE).

use std::io::{IsTerminal, Write};

use model::EventTime;
use serde_json::Value;

/// `--output` of `opentrail lookup`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Aligned columns, fitted to the terminal's width (cells cut with `…`); not cut when stdout is not a
    /// terminal (unless COLUMNS is set).
    Table,
    /// One CloudTrail record a line (NDJSON), exactly as stored.
    Json,
    /// A header and one row per event, quoted as RFC 4180 wants, nothing cut.
    Csv,
}

/// True when `e` (or any error in its chain) is a write to a closed pipe.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

/// One event of a LookupEvents answer: the `Events[]` element and its parsed `CloudTrailEvent`.
pub struct Event {
    pub element: Value,
    pub record: Value,
}

impl Event {
    pub fn new(element: Value) -> Event {
        let record =
            element["CloudTrailEvent"].as_str().and_then(|s| serde_json::from_str(s).ok()).unwrap_or(Value::Null);
        Event { element, record }
    }

    fn time(&self) -> String {
        self.element["EventTime"]
            .as_f64()
            .and_then(EventTime::from_epoch_seconds_f64)
            .map(|t| t.to_rfc3339())
            .unwrap_or_default()
    }

    /// The columns every output starts with: time, source, name, user, ARN, access key, source IP.
    fn who_what_when(&self) -> Vec<String> {
        let (el, r) = (&self.element, &self.record);
        vec![
            self.time(),
            text(&el["EventSource"]),
            text(&el["EventName"]),
            text(&el["Username"]),
            text(&r["userIdentity"]["arn"]),
            text(&el["AccessKeyId"]),
            text(&r["sourceIPAddress"]),
        ]
    }

    /// `requestParameters` as JSON text (empty when null).
    fn request(&self) -> String {
        match &self.record["requestParameters"] {
            Value::Null => String::new(),
            v => v.to_string(),
        }
    }
}

/// Prints events as they arrive, one page at a time, flushing after each.
pub trait Printer {
    fn page(&mut self, events: &[Event]) -> std::io::Result<()>;
    /// After the last page; `shown` events were printed in all.
    fn finish(&mut self, shown: usize) -> std::io::Result<()>;
}

/// The printer of `output` over `out`; a table fits `width` columns when given.
pub fn printer<'a, W: Write + 'a>(output: Output, out: W, width: Option<usize>) -> Box<dyn Printer + 'a> {
    match output {
        Output::Json => Box::new(Ndjson(out)),
        Output::Csv => Box::new(Csv { out: csv::Writer::from_writer(out), header_written: false }),
        Output::Table => Box::new(Table { out, width, widths: None }),
    }
}

/// The width a table must fit: the terminal's when stdout is one, else `COLUMNS` when set, else none (no
/// terminal: nothing is cut).
pub fn table_width() -> Option<usize> {
    let stdout = std::io::stdout();
    if stdout.is_terminal()
        && let Some((terminal_size::Width(w), _)) = terminal_size::terminal_size_of(&stdout)
    {
        return Some(w as usize);
    }
    std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse().ok()).filter(|w: &usize| *w > 0)
}

struct Ndjson<W>(W);

impl<W: Write> Printer for Ndjson<W> {
    fn page(&mut self, events: &[Event]) -> std::io::Result<()> {
        for e in events {
            self.0.write_all(e.element["CloudTrailEvent"].as_str().unwrap_or("{}").as_bytes())?;
            self.0.write_all(b"\n")?;
        }
        self.0.flush()
    }

    fn finish(&mut self, _shown: usize) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Columns of the CSV output: every field whole.
const CSV_HEADER: [&str; 14] = [
    "eventTime",
    "eventSource",
    "eventName",
    "username",
    "userArn",
    "accessKeyId",
    "sourceIPAddress",
    "userAgent",
    "errorCode",
    "readOnly",
    "provenance",
    "eventID",
    "awsRegion",
    "requestParameters",
];

struct Csv<W: Write> {
    out: csv::Writer<W>,
    header_written: bool,
}

impl<W: Write> Printer for Csv<W> {
    fn page(&mut self, events: &[Event]) -> std::io::Result<()> {
        if !self.header_written {
            self.out.write_record(CSV_HEADER).map_err(csv_io)?;
            self.header_written = true;
        }
        for e in events {
            let (el, r) = (&e.element, &e.record);
            let mut row = e.who_what_when();
            row.extend([
                text(&r["userAgent"]),
                text(&r["errorCode"]),
                text(&el["ReadOnly"]),
                text(&el["Provenance"]),
                text(&el["EventId"]),
                text(&r["awsRegion"]),
                e.request(),
            ]);
            self.out.write_record(&row).map_err(csv_io)?;
        }
        self.out.flush()
    }

    fn finish(&mut self, _shown: usize) -> std::io::Result<()> {
        if !self.header_written {
            self.out.write_record(CSV_HEADER).map_err(csv_io)?;
            self.header_written = true;
        }
        self.out.flush()
    }
}

/// The I/O error inside a CSV error as it is (a closed pipe stays a closed pipe).
fn csv_io(e: csv::Error) -> std::io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => io,
        other => std::io::Error::other(format!("csv: {other:?}")),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

const TABLE_HEADER: [&str; 11] =
    ["TIME", "SOURCE", "EVENT", "USER", "ARN", "ACCESS KEY", "SOURCE IP", "VIA", "ERROR", "PROVENANCE", "REQUEST"];

/// Hard-coded: the narrowest a table column is cut to before columns are dropped (TIME is never cut).
const MIN_COLUMN_WIDTH: [usize; 11] = [20, 8, 10, 6, 8, 6, 9, 5, 6, 8, 8];

/// Hard-coded: which columns go first when even the narrowest widths do not fit (indexes into the header).
const DROP_ORDER: [usize; 9] = [10, 4, 9, 5, 7, 1, 8, 6, 3];

/// Hard-coded: the request parameters shown in a table cell at most (the CSV and JSON outputs have them whole).
const REQUEST_CHARS: usize = 60;

struct Table<W> {
    out: W,
    width: Option<usize>,
    /// Column widths, fixed by the first page (0 = column dropped); without a width to fit, later pages
    /// widen a column rather than cut a cell.
    widths: Option<Vec<usize>>,
}

impl<W: Write> Table<W> {
    fn row(e: &Event) -> Vec<String> {
        let (el, r) = (&e.element, &e.record);
        let mut row = e.who_what_when();
        row.extend([
            via(r),
            text(&r["errorCode"]),
            provenance(&text(&el["Provenance"])),
            short(&e.request(), REQUEST_CHARS),
        ]);
        row
    }

    fn line(&mut self, cells: &[&str], widths: &[usize]) -> std::io::Result<()> {
        let mut line = String::new();
        for (cell, &w) in cells.iter().zip(widths) {
            if w == 0 {
                continue;
            }
            if !line.is_empty() {
                line.push_str("  ");
            }
            let cell = if self.width.is_some() { short(cell, w) } else { cell.to_string() };
            line.push_str(&cell);
            line.extend(std::iter::repeat_n(' ', w.saturating_sub(cell.chars().count())));
        }
        writeln!(self.out, "{}", line.trim_end())
    }
}

impl<W: Write> Printer for Table<W> {
    fn page(&mut self, events: &[Event]) -> std::io::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let rows: Vec<Vec<String>> = events.iter().map(Self::row).collect();
        let natural: Vec<usize> = (0..TABLE_HEADER.len())
            .map(|i| rows.iter().map(|r| r[i].chars().count()).chain([TABLE_HEADER[i].len()]).max().unwrap_or(0))
            .collect();
        let widths = match (self.widths.take(), self.width) {
            (None, Some(total)) => {
                let w = fit(&natural, total);
                self.line(&TABLE_HEADER, &w)?;
                w
            }
            (None, None) => {
                self.line(&TABLE_HEADER, &natural)?;
                natural
            }
            (Some(w), Some(_)) => w,
            (Some(w), None) => w.iter().zip(&natural).map(|(a, b)| (*a).max(*b)).collect(),
        };
        for r in &rows {
            let cells: Vec<&str> = r.iter().map(String::as_str).collect();
            self.line(&cells, &widths)?;
        }
        self.widths = Some(widths);
        self.out.flush()
    }

    fn finish(&mut self, shown: usize) -> std::io::Result<()> {
        if shown == 0 {
            writeln!(self.out, "(no events)")?;
        }
        self.out.flush()
    }
}

/// Column widths that fit `total` characters (two spaces between columns): the widest column is cut first,
/// down to its minimum; when even the minimums do not fit, columns are dropped (width 0) in [`DROP_ORDER`].
fn fit(natural: &[usize], total: usize) -> Vec<usize> {
    let mut w = natural.to_vec();
    let used = |w: &[usize]| {
        let shown: Vec<&usize> = w.iter().filter(|x| **x > 0).collect();
        shown.iter().copied().sum::<usize>() + 2 * shown.len().saturating_sub(1)
    };
    let mut drops = DROP_ORDER.iter();
    while used(&w) > total {
        let widest = (0..w.len()).filter(|&i| w[i] > MIN_COLUMN_WIDTH[i].min(natural[i])).max_by_key(|&i| w[i]);
        match widest {
            Some(i) => w[i] -= 1,
            None => match drops.next() {
                Some(&i) => w[i] = 0,
                None => break,
            },
        }
    }
    w
}

/// How the call was made, in a word: the console, the aws CLI, an SDK, Terraform, opentrail…
fn via(record: &Value) -> String {
    let ua = record["userAgent"].as_str().unwrap_or("");
    if record["sessionCredentialFromConsole"].as_str() == Some("true")
        || ua.contains("console.amazonaws.com")
        || ua.contains("signin.amazonaws.com")
        || ua == "AWS Internal"
    {
        return "console".into();
    }
    for (needle, name) in [
        ("aws-cli", "aws-cli"),
        ("Terraform", "terraform"),
        ("Boto3", "boto3"),
        ("botocore", "botocore"),
        ("aws-sdk-", "aws-sdk"),
        ("opentrail/", "opentrail"),
    ] {
        if ua.contains(needle) {
            return name.into();
        }
    }
    ua.chars().take(24).collect()
}

/// How the record arrived, short: the kind, and the last part of its detail (`ingest:ingester` for
/// `ingest:arn:aws:iam::123456789012:user/ingester`).
fn provenance(text: &str) -> String {
    match text.split_once(':') {
        Some((kind, detail)) => format!("{kind}:{}", detail.rsplit(['/', ':']).next().unwrap_or(detail)),
        None => text.to_string(),
    }
}

/// At most `max` characters, the last one `…` when cut.
fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else if max == 0 {
        String::new()
    } else {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(name: &str, request: Value) -> Event {
        let record = json!({"eventName": name, "userAgent": "aws-cli/2.15.0", "requestParameters": request,
                            "userIdentity": {"arn": "arn:aws:iam::123456789012:user/a, \"quoted\" user"}});
        Event::new(json!({"EventId": "e1", "EventName": name, "EventTime": 1_577_869_200.0,
                          "EventSource": "iam.amazonaws.com", "CloudTrailEvent": record.to_string(),
                          "Provenance": "ingest:arn:aws:iam::123456789012:user/ingester"}))
    }

    fn print(output: Output, width: Option<usize>, pages: &[Vec<Event>]) -> String {
        let mut buf = Vec::new();
        {
            let mut p = printer(output, &mut buf, width);
            for page in pages {
                p.page(page).unwrap();
            }
            p.finish(pages.iter().map(Vec::len).sum()).unwrap();
        }
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn via_names_the_tool() {
        assert_eq!(
            via(&json!({"userAgent":"aws-cli/2.15.0 Python/3.11","sessionCredentialFromConsole":null})),
            "aws-cli"
        );
        assert_eq!(via(&json!({"userAgent":"Mozilla/5.0","sessionCredentialFromConsole":"true"})), "console");
        assert_eq!(via(&json!({"userAgent":"opentrail/0.1.0"})), "opentrail");
    }

    #[test]
    fn a_table_fits_its_width_and_is_not_cut_without_one() {
        let long = json!({"policyDocument": "x".repeat(200)});
        let page = vec![event("CreateUser", long.clone()), event("DeleteUser", json!(null))];
        let fitted = print(Output::Table, Some(80), &[page]);
        assert!(fitted.lines().all(|l| l.chars().count() <= 80), "{fitted}");
        assert!(fitted.contains("TIME") && fitted.contains("CreateUser"), "{fitted}");
        let whole = print(Output::Table, None, &[vec![event("CreateUser", long)]]);
        assert!(whole.contains(&"x".repeat(40)) && whole.contains('…'), "REQUEST is cut at 60 chars: {whole}");
        assert!(whole.contains("arn:aws:iam::123456789012:user/a, \"quoted\" user"), "{whole}");
    }

    #[test]
    fn later_pages_keep_the_first_pages_columns() {
        let out = print(Output::Table, None, &[vec![event("A", json!(null))], vec![event("LongerName", json!(null))]]);
        assert_eq!(out.lines().filter(|l| l.starts_with("TIME")).count(), 1, "{out}");
        assert_eq!(out.lines().count(), 3, "{out}");
    }

    #[test]
    fn an_empty_result_says_so_in_a_table_and_is_a_bare_header_in_csv() {
        assert_eq!(print(Output::Table, None, &[]), "(no events)\n");
        assert_eq!(print(Output::Csv, None, &[]).lines().count(), 1);
        assert_eq!(print(Output::Json, None, &[]), "");
    }

    #[test]
    fn csv_quotes_commas_and_quotes() {
        let out = print(Output::Csv, None, &[vec![event("CreateUser", json!({"userName": "Mary"}))]]);
        let mut rows = csv::Reader::from_reader(out.as_bytes());
        let headers = rows.headers().unwrap().clone();
        let row = rows.records().next().unwrap().unwrap();
        let get = |name: &str| row.get(headers.iter().position(|h| h == name).unwrap()).unwrap().to_string();
        assert_eq!(get("userArn"), "arn:aws:iam::123456789012:user/a, \"quoted\" user");
        assert_eq!(get("requestParameters"), r#"{"userName":"Mary"}"#);
        assert_eq!(get("eventTime"), "2020-01-01T09:00:00Z");
        assert_eq!(get("provenance"), "ingest:arn:aws:iam::123456789012:user/ingester");
    }

    #[test]
    fn fitting_cuts_the_widest_then_drops_columns() {
        let natural = [20, 17, 12, 8, 50, 20, 13, 7, 6, 10, 60];
        let w = fit(&natural, 120);
        let used: usize = w.iter().filter(|x| **x > 0).sum::<usize>() + 2 * (w.iter().filter(|x| **x > 0).count() - 1);
        assert!(used <= 120, "{w:?}");
        assert_eq!(w[0], 20, "TIME is never cut");
        let narrow = fit(&natural, 40);
        assert_eq!(narrow[10], 0, "REQUEST goes first: {narrow:?}");
        assert_eq!(narrow[0], 20);
        assert_eq!(fit(&natural, 1000), natural.to_vec());
    }
}
