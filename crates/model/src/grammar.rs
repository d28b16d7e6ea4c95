//! The lookup grammar, one parser for every surface: `KEY=v1,v2` / `KEY!=v1,v2` (the CLI's `--attr`, the
//! native API's `attr=`), and the one-pattern form of a LookupEvents `AttributeValue` (`[!]pattern`, a
//! repeated key OR-ed). A pattern is an exact value, a prefix (a trailing `*`) or, for `SourceIPAddress`, a
//! CIDR block. `\` escapes `\ , * !`; before any other character it is itself. The reference semantics of a
//! condition ([`Condition::matches`]) is here too, next to the parser; `README.md` ("Query grammar") is the
//! user's documentation of both.

use std::fmt::{self, Write as _};
use std::net::IpAddr;

use crate::{AttributeKey, IndexFields, Provenance};

/// One value pattern of a condition.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// The value itself. For `Provenance`, `kind:detail` needs both (see `Provenance::lookup_terms`).
    Exact(String),
    /// Any value starting with this (`Delete*`); the empty prefix (`*`) is "the attribute is present".
    Prefix(String),
    /// `SourceIPAddress` only: any address inside the block.
    Cidr(IpNet),
}

/// An IPv4 or IPv6 network: an address with its host bits zero, and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    len: u8,
}

impl IpNet {
    /// Parses `addr/len`; host bits must be zero (`10.1.0.0/8` is refused, naming `10.0.0.0/8`).
    pub fn parse(s: &str) -> Result<IpNet, QueryProblem> {
        let (a, l) = s.split_once('/').ok_or(QueryProblem::Cidr { reason: "expected ADDRESS/LENGTH".into() })?;
        let addr: IpAddr =
            a.parse().map_err(|_| QueryProblem::Cidr { reason: format!("{a:?} is not an IP address") })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len: u8 = match l.parse() {
            Ok(n) if n <= max && !l.starts_with('+') && !(l.len() > 1 && l.starts_with('0')) => n,
            _ => return Err(QueryProblem::Cidr { reason: format!("prefix length {l:?} is not 0..={max}") }),
        };
        let net = IpNet { addr: mask(addr, len), len };
        if net.addr != addr {
            return Err(QueryProblem::Cidr { reason: format!("host bits are set (did you mean {net}?)") });
        }
        Ok(net)
    }

    /// Does this text parse as an address inside the block? (IPv4-mapped IPv6 addresses are IPv6.)
    pub fn contains_text(&self, value: &str) -> bool {
        value.parse::<IpAddr>().is_ok_and(|a| a.is_ipv4() == self.addr.is_ipv4() && mask(a, self.len) == self.addr)
    }

    /// A prefix every address of the block has in its text form: the whole octets of an IPv4 block
    /// (`10.` for `10.0.0.0/8`; Rust's parser takes only canonical dotted decimal), nothing for IPv6 (whose
    /// text forms vary). The index scans the attribute's terms from there and filters by [`IpNet::contains_text`].
    pub fn text_prefix(&self) -> String {
        match self.addr {
            IpAddr::V4(a) => {
                let n = usize::from(self.len / 8);
                let mut s: String = a.octets()[..n].iter().map(|o| format!("{o}.")).collect();
                if n == 4 {
                    s.pop(); // a /32 is the address itself
                }
                s
            }
            IpAddr::V6(_) => String::new(),
        }
    }
}

fn mask(a: IpAddr, len: u8) -> IpAddr {
    match a {
        IpAddr::V4(v) => {
            let m = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) };
            IpAddr::V4((u32::from(v) & m).into())
        }
        IpAddr::V6(v) => {
            let m = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len)) };
            IpAddr::V6((u128::from(v) & m).into())
        }
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl Pattern {
    /// Does one attribute value match? (Not for `Provenance` exact patterns, which need two values: see
    /// [`Condition::matches`].)
    pub fn matches_value(&self, value: &str) -> bool {
        match self {
            Pattern::Exact(v) => v == value,
            Pattern::Prefix(p) => value.starts_with(p.as_str()),
            Pattern::Cidr(n) => n.contains_text(value),
        }
    }

    /// Where a term-range scan starts (and the prefix every matching value has); `None` for an exact value.
    pub fn scan_prefix(&self) -> Option<String> {
        match self {
            Pattern::Exact(_) => None,
            Pattern::Prefix(p) => Some(p.clone()),
            Pattern::Cidr(n) => Some(n.text_prefix()),
        }
    }

    fn write_escaped(&self, out: &mut String) {
        match self {
            Pattern::Exact(v) => escape_into(v, out),
            Pattern::Prefix(p) => {
                escape_into(p, out);
                out.push('*');
            }
            Pattern::Cidr(n) => {
                let _ = write!(out, "{n}");
            }
        }
    }
}

/// Writes `v` so that the parser reads it back as literal text: `\ , *` escaped everywhere, `!` at the start.
fn escape_into(v: &str, out: &mut String) {
    for (i, c) in v.chars().enumerate() {
        if matches!(c, '\\' | ',' | '*') || (i == 0 && c == '!') {
            out.push('\\');
        }
        out.push(c);
    }
}

/// One condition: the attribute's values match one of the patterns (or, negated, none of them).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Condition {
    pub key: AttributeKey,
    pub negated: bool,
    pub patterns: Vec<Pattern>,
}

/// What is wrong with a query, naming the offending token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{token}`: {problem}")]
pub struct QueryError {
    pub token: String,
    pub problem: QueryProblem,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryProblem {
    #[error("expected KEY=VALUE[,VALUE…] or KEY!=VALUE[,VALUE…]")]
    NoOperator,
    #[error("unknown attribute key (one of {})", AttributeKey::ALL.map(|k| k.as_str()).join(", "))]
    UnknownKey,
    #[error("empty value")]
    EmptyValue,
    #[error("`*` is only allowed at the end of a value (a prefix match); write `\\*` for a literal `*`")]
    StarNotAtEnd,
    #[error("not a CIDR block: {reason}")]
    Cidr { reason: String },
    #[error("a CIDR block cannot end in `*`")]
    CidrWithStar,
    #[error("{key} takes exact values only (no `*` prefix)")]
    PrefixNotSupported { key: AttributeKey },
    #[error("not a provenance (self-audit, ingest[:ARN], channel[:ARN], gateway[:NAME], import[:SOURCE])")]
    NotAProvenance,
}

impl Condition {
    /// `key` equal to `value`, exactly (no grammar applied).
    pub fn equals(key: AttributeKey, value: impl Into<String>) -> Condition {
        Condition { key, negated: false, patterns: vec![Pattern::Exact(value.into())] }
    }

    /// Parses `KEY=v1,v2,…` or `KEY!=v1,v2,…` (the CLI's `--attr`, the native API's `attr=`).
    pub fn parse(expr: &str) -> Result<Condition, QueryError> {
        let err = |token: &str, problem| QueryError { token: token.to_string(), problem };
        let (key_text, negated, values) = match expr.split_once('=') {
            Some((k, v)) => match k.strip_suffix('!') {
                Some(k) => (k, true, v),
                None => (k, false, v),
            },
            None => return Err(err(expr, QueryProblem::NoOperator)),
        };
        let key = AttributeKey::parse(key_text).ok_or_else(|| err(key_text, QueryProblem::UnknownKey))?;
        let mut patterns = Vec::new();
        for raw in split_unescaped(values) {
            patterns.push(
                parse_pattern(key, raw).map_err(|problem| err(if raw.is_empty() { expr } else { raw }, problem))?,
            );
        }
        Ok(Condition { key, negated, patterns })
    }

    /// Parses one LookupEvents `AttributeValue`: `[!]pattern`, commas literal (a repeated key is the OR).
    pub fn parse_lookup_value(key: AttributeKey, value: &str) -> Result<Condition, QueryError> {
        let (negated, raw) = match value.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, value),
        };
        let pattern = parse_pattern(key, raw).map_err(|problem| QueryError { token: value.to_string(), problem })?;
        Ok(Condition { key, negated, patterns: vec![pattern] })
    }

    /// The LookupEvents `AttributeValue`s that say this condition (one per pattern, the key repeated).
    pub fn lookup_values(&self) -> Vec<String> {
        self.patterns
            .iter()
            .map(|p| {
                let mut s = String::new();
                if self.negated {
                    s.push('!');
                }
                p.write_escaped(&mut s);
                s
            })
            .collect()
    }

    /// The reference semantics of one condition.
    pub fn matches(&self, f: &IndexFields) -> bool {
        let values = self.key.values(f);
        let hit = self.patterns.iter().any(|p| match p {
            Pattern::Exact(v) if self.key == AttributeKey::Provenance => {
                provenance_terms(v).iter().all(|t| values.contains(&t.as_str()))
            }
            p => values.iter().any(|v| p.matches_value(v)),
        });
        hit != self.negated
    }

    /// Conditions on the same key with the same sense become one (their patterns OR-ed): a key repeated in
    /// LookupAttributes, `--attr` or `attr=` is an OR; different keys stay AND-ed. Order of first appearance.
    pub fn merge(conditions: impl IntoIterator<Item = Condition>) -> Vec<Condition> {
        let mut out: Vec<Condition> = Vec::new();
        for c in conditions {
            match out.iter_mut().find(|o| o.key == c.key && o.negated == c.negated) {
                Some(o) => {
                    for p in c.patterns {
                        if !o.patterns.contains(&p) {
                            o.patterns.push(p);
                        }
                    }
                }
                None => out.push(c),
            }
        }
        out
    }
}

/// The canonical expression: `Parse(display)` gives the condition back.
impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        s.push_str(self.key.as_str());
        s.push_str(if self.negated { "!=" } else { "=" });
        for (i, p) in self.patterns.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            p.write_escaped(&mut s);
        }
        f.write_str(&s)
    }
}

/// The values a `Provenance` exact pattern needs: the kind and the detail of `kind:detail`, else the value
/// itself (a bare detail, which the grammar refuses but a programmatic query may hold).
pub fn provenance_terms(v: &str) -> Vec<String> {
    Provenance::lookup_terms(v).unwrap_or_else(|| vec![v.to_string()])
}

/// Splits at unescaped commas, keeping the escapes (each part is parsed by [`parse_pattern`]).
fn split_unescaped(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            parts.push(&s[start..i]);
            start = i + 1;
        }
    }
    parts.push(&s[start..]);
    parts
}

/// One pattern: unescapes `\ , * !`, takes a last unescaped `*` as a prefix, and a `/` in a
/// `SourceIPAddress` value as a CIDR block.
fn parse_pattern(key: AttributeKey, raw: &str) -> Result<Pattern, QueryProblem> {
    let mut text = String::with_capacity(raw.len());
    let mut prefix = false;
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if prefix {
            return Err(QueryProblem::StarNotAtEnd);
        }
        match c {
            '\\' => match chars.peek() {
                Some(&n @ ('\\' | ',' | '*' | '!')) => {
                    text.push(n);
                    chars.next();
                }
                _ => text.push('\\'),
            },
            '*' => prefix = true,
            c => text.push(c),
        }
    }
    if key == AttributeKey::SourceIpAddress && text.contains('/') {
        if prefix {
            return Err(QueryProblem::CidrWithStar);
        }
        return IpNet::parse(&text).map(Pattern::Cidr);
    }
    if prefix {
        if matches!(key, AttributeKey::EventId | AttributeKey::Provenance) {
            return Err(QueryProblem::PrefixNotSupported { key });
        }
        return Ok(Pattern::Prefix(text));
    }
    if text.is_empty() {
        return Err(QueryProblem::EmptyValue);
    }
    if key == AttributeKey::Provenance && Provenance::lookup_terms(&text).is_none() {
        return Err(QueryProblem::NotAProvenance);
    }
    Ok(Pattern::Exact(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use AttributeKey as K;

    fn parse(s: &str) -> Condition {
        Condition::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn problem(s: &str) -> (String, QueryProblem) {
        let e = Condition::parse(s).unwrap_err();
        (e.token, e.problem)
    }

    #[test]
    fn values_or_prefixes_cidrs_and_exclusions() {
        let c = parse("EventName=DeleteTrail,StopLogging");
        assert_eq!(c.key, K::EventName);
        assert!(!c.negated);
        assert_eq!(c.patterns, vec![Pattern::Exact("DeleteTrail".into()), Pattern::Exact("StopLogging".into())]);
        assert_eq!(parse("ErrorCode=AccessDenied*").patterns, vec![Pattern::Prefix("AccessDenied".into())]);
        assert_eq!(parse("ErrorCode=*").patterns, vec![Pattern::Prefix(String::new())]);
        let c = parse("EventSource!=cloudtrail.amazonaws.com");
        assert!(c.negated);
        assert_eq!(c.patterns, vec![Pattern::Exact("cloudtrail.amazonaws.com".into())]);
        let c = parse("SourceIPAddress=10.0.0.0/8,2001:db8::/32,192.168.1.7");
        assert!(matches!(c.patterns[0], Pattern::Cidr(_)));
        assert!(matches!(c.patterns[1], Pattern::Cidr(_)));
        assert_eq!(c.patterns[2], Pattern::Exact("192.168.1.7".into()));
        // `/` is only special for SourceIPAddress.
        assert_eq!(
            parse("ResourceName=arn:aws:iam::1:user/Mary").patterns[0],
            Pattern::Exact("arn:aws:iam::1:user/Mary".into())
        );
    }

    #[test]
    fn escapes_make_specials_literal_and_a_lone_backslash_is_itself() {
        assert_eq!(parse(r"Username=a\,b").patterns, vec![Pattern::Exact("a,b".into())]);
        assert_eq!(parse(r"ResourceName=bucket/\*").patterns, vec![Pattern::Exact("bucket/*".into())]);
        assert_eq!(parse(r"ResourceName=a\*b*").patterns, vec![Pattern::Prefix("a*b".into())]);
        assert_eq!(parse(r"Username=DOMAIN\user").patterns, vec![Pattern::Exact(r"DOMAIN\user".into())]);
        assert_eq!(parse(r"Username=x\\,y").patterns, vec![Pattern::Exact(r"x\".into()), Pattern::Exact("y".into())]);
        assert_eq!(parse("Username=!x").patterns, vec![Pattern::Exact("!x".into())]);
        // `=` inside a value is literal: only the first `=` separates.
        assert_eq!(parse("UserAgent=a=b").patterns, vec![Pattern::Exact("a=b".into())]);
    }

    #[test]
    fn rejects_name_the_offending_token() {
        assert_eq!(problem("EventName"), ("EventName".into(), QueryProblem::NoOperator));
        assert_eq!(problem("Colour=red"), ("Colour".into(), QueryProblem::UnknownKey));
        assert_eq!(problem("eventname=x").1, QueryProblem::UnknownKey);
        assert_eq!(problem("EventName=Del*ete"), ("Del*ete".into(), QueryProblem::StarNotAtEnd));
        assert_eq!(problem("EventName=**").1, QueryProblem::StarNotAtEnd);
        let (token, p) = problem("SourceIPAddress=10.0.0.0/33");
        assert_eq!(token, "10.0.0.0/33");
        assert!(matches!(p, QueryProblem::Cidr { .. }), "{p}");
        assert!(
            matches!(problem("SourceIPAddress=10.1.0.0/8").1, QueryProblem::Cidr { reason } if reason.contains("10.0.0.0/8"))
        );
        assert!(matches!(problem("SourceIPAddress=2001:db8::/129").1, QueryProblem::Cidr { .. }));
        assert!(matches!(problem("SourceIPAddress=nope/8").1, QueryProblem::Cidr { .. }));
        assert_eq!(problem("SourceIPAddress=10.0.0.0/8*").1, QueryProblem::CidrWithStar);
        assert_eq!(problem("EventName=").1, QueryProblem::EmptyValue);
        assert_eq!(problem("EventName=a,,b").1, QueryProblem::EmptyValue);
        assert_eq!(problem("EventId=abc*").1, QueryProblem::PrefixNotSupported { key: K::EventId });
        assert_eq!(problem("Provenance=selfaudit").1, QueryProblem::NotAProvenance);
        let msg = Condition::parse("SourceIPAddress=10.0.0.0/33").unwrap_err().to_string();
        assert!(msg.contains("`10.0.0.0/33`"), "{msg}");
    }

    #[test]
    fn lookup_values_are_one_pattern_with_a_leading_bang() {
        let c = Condition::parse_lookup_value(K::UserAgent, "Mozilla/5.0 (KHTML, like Gecko)").unwrap();
        assert_eq!(c.patterns, vec![Pattern::Exact("Mozilla/5.0 (KHTML, like Gecko)".into())]);
        let c = Condition::parse_lookup_value(K::EventSource, "!cloudtrail.amazonaws.com").unwrap();
        assert!(c.negated);
        let c = Condition::parse_lookup_value(K::EventName, r"\!x").unwrap();
        assert!(!c.negated);
        assert_eq!(c.patterns, vec![Pattern::Exact("!x".into())]);
        assert_eq!(Condition::parse_lookup_value(K::EventName, "!").unwrap_err().problem, QueryProblem::EmptyValue);
    }

    #[test]
    fn display_and_lookup_values_round_trip() {
        for s in [
            "EventName=DeleteTrail,StopLogging",
            r"Username!=a\,b,c*,\!d,e\\",
            "SourceIPAddress=10.0.0.0/8,::/0,1.2.3.4",
            r"ResourceName=x\*y*",
        ] {
            let c = parse(s);
            assert_eq!(parse(&c.to_string()), c, "{s}");
            let back: Vec<Condition> =
                c.lookup_values().iter().map(|v| Condition::parse_lookup_value(c.key, v).unwrap()).collect();
            assert_eq!(Condition::merge(back), vec![c], "{s}");
        }
    }

    #[test]
    fn cidr_blocks_contain_their_addresses_only() {
        let n = IpNet::parse("10.0.0.0/8").unwrap();
        assert!(n.contains_text("10.255.0.1"));
        assert!(!n.contains_text("11.0.0.1"));
        assert!(!n.contains_text("::ffff:10.0.0.1"));
        assert!(!n.contains_text("AWS Internal"));
        assert_eq!(n.text_prefix(), "10.");
        assert_eq!(IpNet::parse("172.16.0.0/12").unwrap().text_prefix(), "172.");
        assert_eq!(IpNet::parse("0.0.0.0/0").unwrap().text_prefix(), "");
        assert_eq!(IpNet::parse("1.2.3.4/32").unwrap().text_prefix(), "1.2.3.4");
        let v6 = IpNet::parse("2001:db8::/32").unwrap();
        assert!(v6.contains_text("2001:DB8:0:1::5"));
        assert!(!v6.contains_text("2001:db9::1"));
        assert!(!v6.contains_text("10.0.0.1"));
    }

    #[test]
    fn merge_ors_a_repeated_key_and_keeps_senses_apart() {
        let m = Condition::merge([
            parse("EventName=A"),
            parse("Username=u"),
            parse("EventName=B,A"),
            parse("EventName!=C"),
        ]);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].patterns, vec![Pattern::Exact("A".into()), Pattern::Exact("B".into())]);
        assert!(m[2].negated);
    }
}
