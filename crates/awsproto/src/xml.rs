//! A small XML reader for AWS bodies (query/EC2 responses, S3 and Route 53 bodies, error documents): elements,
//! attributes, text, CDATA, comments and the five entities plus character references. No DTDs, no namespaces
//! beyond dropping a prefix. Hostile input gives `None`, never a panic; nesting is capped (hard-coded 64).

const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Element {
    /// Local name (a `prefix:` is dropped).
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    /// The element's own text, concatenated, entity-decoded.
    pub text: String,
}

impl Element {
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Depth-first search for the first element of this name, self included.
    pub fn find(&self, name: &str) -> Option<&Element> {
        if self.name == name {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(name))
    }
}

/// Parse one document; `None` if it is not well-formed enough to read.
pub(crate) fn parse(input: &[u8]) -> Option<Element> {
    let text = std::str::from_utf8(input).ok()?;
    let mut p = Parser { s: text.as_bytes(), src: text, i: 0 };
    p.skip_misc();
    let root = p.element(0)?;
    Some(root)
}

struct Parser<'a> {
    s: &'a [u8],
    src: &'a str,
    i: usize,
}

impl Parser<'_> {
    fn starts(&self, pat: &str) -> bool {
        self.s[self.i..].starts_with(pat.as_bytes())
    }

    fn skip_ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn skip_until(&mut self, pat: &str) -> Option<()> {
        let rest = &self.src[self.i..];
        let at = rest.find(pat)?;
        self.i += at + pat.len();
        Some(())
    }

    /// Whitespace, the XML declaration, processing instructions, comments and a DOCTYPE before the root.
    fn skip_misc(&mut self) {
        loop {
            self.skip_ws();
            if self.starts("<?") {
                if self.skip_until("?>").is_none() {
                    self.i = self.s.len();
                }
            } else if self.starts("<!--") {
                if self.skip_until("-->").is_none() {
                    self.i = self.s.len();
                }
            } else if self.starts("<!") {
                if self.skip_until(">").is_none() {
                    self.i = self.s.len();
                }
            } else {
                return;
            }
        }
    }

    fn name(&mut self) -> Option<&str> {
        let start = self.i;
        while self.i < self.s.len() {
            let c = self.s[self.i];
            if c.is_ascii_whitespace() || c == b'>' || c == b'/' || c == b'=' {
                break;
            }
            self.i += 1;
        }
        if self.i == start {
            return None;
        }
        self.src.get(start..self.i)
    }

    fn element(&mut self, depth: usize) -> Option<Element> {
        if depth > MAX_DEPTH || !self.starts("<") {
            return None;
        }
        self.i += 1;
        let qname = self.name()?.to_owned();
        let mut el = Element { name: local(&qname).to_owned(), ..Element::default() };
        loop {
            self.skip_ws();
            if self.starts("/>") {
                self.i += 2;
                return Some(el);
            }
            if self.starts(">") {
                self.i += 1;
                break;
            }
            let key = self.name()?.to_owned();
            self.skip_ws();
            if !self.starts("=") {
                return None;
            }
            self.i += 1;
            self.skip_ws();
            let quote = *self.s.get(self.i)?;
            if quote != b'"' && quote != b'\'' {
                return None;
            }
            self.i += 1;
            let start = self.i;
            while self.i < self.s.len() && self.s[self.i] != quote {
                self.i += 1;
            }
            let raw = self.src.get(start..self.i)?;
            self.i += 1;
            el.attrs.push((key, unescape(raw)));
        }
        // Content.
        loop {
            if self.i >= self.s.len() {
                return None;
            }
            if self.starts("</") {
                self.i += 2;
                let end = self.name()?;
                if end != qname {
                    return None;
                }
                self.skip_ws();
                if !self.starts(">") {
                    return None;
                }
                self.i += 1;
                return Some(el);
            } else if self.starts("<!--") {
                self.skip_until("-->")?;
            } else if self.starts("<![CDATA[") {
                let start = self.i + 9;
                self.skip_until("]]>")?;
                el.text.push_str(self.src.get(start..self.i - 3)?);
            } else if self.starts("<?") {
                self.skip_until("?>")?;
            } else if self.starts("<") {
                let child = self.element(depth + 1)?;
                el.children.push(child);
            } else {
                let start = self.i;
                while self.i < self.s.len() && self.s[self.i] != b'<' {
                    self.i += 1;
                }
                el.text.push_str(&unescape(self.src.get(start..self.i)?));
            }
        }
    }
}

fn local(qname: &str) -> &str {
    qname.rsplit(':').next().unwrap_or(qname)
}

fn unescape(raw: &str) -> String {
    if !raw.contains('&') {
        return raw.to_owned();
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';').filter(|&e| e <= 12) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_error_document_with_prolog_entities_and_prefixes() {
        let doc = br#"<?xml version="1.0" encoding="UTF-8"?>
<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type>
<Code>NoSuchEntity</Code><Message>The user with name nobody &amp; co cannot be found.</Message></Error>
<a:RequestId><![CDATA[abc]]></a:RequestId></ErrorResponse>"#;
        let root = parse(doc).expect("parses");
        assert_eq!(root.name, "ErrorResponse");
        assert_eq!(root.attrs, vec![("xmlns".to_owned(), "https://iam.amazonaws.com/doc/2010-05-08/".to_owned())]);
        let err = root.child("Error").expect("Error");
        assert_eq!(err.child("Code").map(|c| c.text.as_str()), Some("NoSuchEntity"));
        assert_eq!(
            err.child("Message").map(|c| c.text.as_str()),
            Some("The user with name nobody & co cannot be found.")
        );
        assert_eq!(root.child("RequestId").map(|c| c.text.as_str()), Some("abc"));
    }

    #[test]
    fn rejects_mismatched_and_too_deep_documents() {
        assert!(parse(b"<a><b></a>").is_none());
        assert!(parse(b"<a>").is_none());
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(parse(deep.as_bytes()).is_none());
    }
}
