//! Secrets never reach the journal: secret-named fields at any depth of request parameters, response
//! elements and query strings are replaced by `HIDDEN_DUE_TO_SECURITY_REASONS` (what CloudTrail itself
//! writes) or, with a configured key, by `HMAC-SHA256:<hex>` of the value so equal secrets correlate.
//! Headers are never recorded (but `User-Agent` and the Host as `clientProvidedHostHeader`), so
//! `Authorization`, `Cookie`, `Set-Cookie` and `X-Amz-Security-Token` cannot leak from there.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// What a secret is replaced by when no HMAC key is configured.
pub const MARKER: &str = "HIDDEN_DUE_TO_SECURITY_REASONS";

/// Hard-coded: a field whose name (lowercased, `_` and `-` dropped) contains one of these is secret ...
const SECRET_PARTS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "privatekey",
    "apikey",
    "signature",
    "authorization",
    "cookie",
    "keymaterial",
    "plaintext",
    "sessionkey",
    "signingkey",
];
/// ... unless it ends with one of these: the name or id of a secret is what an audit needs to say which
/// secret was read (`SecretId`, `SecretArn`, `TokenType`, `PasswordLength`, `passwordResetRequired`).
const NOT_SECRET_SUFFIXES: &[&str] = &[
    "id",
    "ids",
    "arn",
    "arns",
    "name",
    "names",
    "type",
    "types",
    "length",
    "required",
    "count",
    "list",
    "expiration",
];

/// Hard-coded: tokens that are not secrets — idempotency and pagination tokens AWS itself records.
const NOT_SECRET_NAMES: &[&str] =
    &["clienttoken", "clientrequesttoken", "idempotencytoken", "nexttoken", "continuationtoken", "paginationtoken"];

/// Replaces secrets; built once per gateway.
#[derive(Clone, Default)]
pub struct Redactor {
    key: Option<Vec<u8>>,
    extra: Vec<String>,
}

fn normalise(name: &str) -> String {
    name.chars().filter(|c| *c != '_' && *c != '-').flat_map(char::to_lowercase).collect()
}

impl Redactor {
    /// `key`: the HMAC key (already decoded); `extra`: more secret field names.
    pub fn new(key: Option<Vec<u8>>, extra: &[String]) -> Redactor {
        Redactor { key, extra: extra.iter().map(|n| normalise(n)).collect() }
    }

    /// Whether a field of this name holds a secret.
    pub fn is_secret(&self, name: &str) -> bool {
        let n = normalise(name);
        if self.extra.contains(&n) {
            return true;
        }
        !NOT_SECRET_NAMES.contains(&n.as_str())
            && SECRET_PARTS.iter().any(|p| n.contains(p))
            && !NOT_SECRET_SUFFIXES.iter().any(|s| n.ends_with(s))
    }

    /// The replacement of one secret value.
    pub fn replace(&self, secret: &str) -> String {
        match &self.key {
            None => MARKER.to_string(),
            Some(key) => {
                let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
                mac.update(secret.as_bytes());
                format!("HMAC-SHA256:{}", hex::encode(mac.finalize().into_bytes()))
            }
        }
    }

    /// Redacts secret-named members at any depth, in place. Booleans and nulls are kept (they say
    /// whether, not what); anything else under a secret name is replaced whole.
    pub fn value(&self, v: &mut Value) {
        match v {
            Value::Object(map) => {
                for (k, member) in map.iter_mut() {
                    if self.is_secret(k) {
                        self.replace_value(member);
                    } else {
                        self.value(member);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.value(i)),
            _ => {}
        }
    }

    fn replace_value(&self, v: &mut Value) {
        match v {
            Value::Null | Value::Bool(_) => {}
            Value::String(s) => *v = Value::String(self.replace(s)),
            other => *other = Value::String(self.replace(&other.to_string())),
        }
    }

    /// A query string (`a=1&b=2`, as sent) as a JSON object of its decoded pairs, secrets redacted; a name
    /// given more than once becomes an array.
    pub fn query(&self, query: &str) -> serde_json::Map<String, Value> {
        let mut out = serde_json::Map::new();
        for (k, v) in form_pairs(query) {
            let v = if self.is_secret(&k) { self.replace(&v) } else { v };
            match out.get_mut(&k) {
                None => {
                    out.insert(k, Value::String(v));
                }
                Some(Value::Array(a)) => a.push(Value::String(v)),
                Some(prev) => *prev = Value::Array(vec![prev.take(), Value::String(v)]),
            }
        }
        out
    }
}

/// `application/x-www-form-urlencoded` pairs, percent- and `+`-decoded (invalid UTF-8 replaced).
pub fn form_pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex_digit(b[i + 1]), hex_digit(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            x => out.push(x),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_digit(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn aws_secret_fields_are_redacted_at_any_depth_and_their_names_kept() {
        let r = Redactor::default();
        let mut v = json!({
            "SecretId": "prod/db",
            "SecretString": "hunter2",
            "SecretBinary": "aGk=",
            "credentials": {"accessKeyId": "ASIA1", "secretAccessKey": "s3cr3t", "sessionToken": "tok"},
            "loginProfile": {"userName": "Mary", "password": "pw", "passwordResetRequired": true},
            "list": [{"NewPassword": "x"}, {"PrivateKey": {"pem": "-----BEGIN"}}],
            "Authorization": "AWS4-HMAC-SHA256 Credential=…, Signature=abc",
            "X-Amz-Security-Token": "t",
            "KeyName": "my-keypair",
            "Key": "photos/cat.jpg",
            "ClientRequestToken": "idem-1",
        });
        r.value(&mut v);
        let text = v.to_string();
        for secret in ["hunter2", "aGk=", "s3cr3t", "\"tok\"", "\"pw\"", "\"x\"", "BEGIN", "Signature=abc", "\"t\""] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert_eq!(v["SecretId"], "prod/db");
        assert_eq!(v["credentials"]["accessKeyId"], "ASIA1");
        assert_eq!(v["credentials"]["secretAccessKey"], MARKER);
        assert_eq!(v["loginProfile"]["passwordResetRequired"], true);
        assert_eq!(v["list"][1]["PrivateKey"], MARKER);
        assert_eq!(v["KeyName"], "my-keypair");
        assert_eq!(v["Key"], "photos/cat.jpg");
        assert_eq!(v["ClientRequestToken"], "idem-1");
    }

    #[test]
    fn with_a_key_equal_secrets_correlate_and_differ_from_others() {
        let r = Redactor::new(Some(vec![7; 32]), &["pin".to_string()]);
        let a = r.replace("hunter2");
        assert!(a.starts_with("HMAC-SHA256:") && a.len() == 12 + 64, "{a}");
        assert_eq!(a, r.replace("hunter2"));
        assert_ne!(a, r.replace("hunter3"));
        let mut v = json!({"pin": 1234});
        r.value(&mut v);
        assert!(v["pin"].as_str().unwrap().starts_with("HMAC-SHA256:"));
    }

    #[test]
    fn query_strings_lose_tokens_and_sigv4_signatures() {
        let r = Redactor::default();
        let q = r.query(
            "access_token=abc%2Bdef&X-Amz-Signature=ff00&X-Amz-Credential=AKIA%2F20240101%2Fus-east-1&a=1&a=2&q=x+y",
        );
        assert_eq!(q["access_token"], MARKER);
        assert_eq!(q["X-Amz-Signature"], MARKER);
        assert_eq!(q["X-Amz-Credential"], "AKIA/20240101/us-east-1");
        assert_eq!(q["a"], json!(["1", "2"]));
        assert_eq!(q["q"], "x y");
    }

    #[test]
    fn percent_decoding_tolerates_broken_escapes() {
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("a%20b%"), "a b%");
    }
}
