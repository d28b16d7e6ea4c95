//! The service table generated from botocore's models by `scripts/awsproto-gen.py`
//! (`data/services.json.gz`): services, operations, HTTP bindings and shapes. The file is inflated and its
//! service headers read once, on first use; each service's operations and shapes are parsed only when a call
//! to that service is first described, so memory follows the services the gateway actually sees.

use std::collections::HashMap;
use std::io::Read;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::value::RawValue;

static TABLE_GZ: &[u8] = include_bytes!("../data/services.json.gz");

#[derive(Debug, Deserialize)]
pub(crate) struct Table {
    pub botocore: String,
    pub services: Vec<Service>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Service {
    /// botocore's name (`iam`, `elbv2`, `stepfunctions`…).
    pub name: String,
    /// `query`, `ec2`, `json`, `rest-json`, `rest-xml`, in botocore's order of preference.
    pub protocols: Vec<String>,
    pub api_version: String,
    /// The SigV4 credential scope's service.
    pub signing_name: String,
    pub endpoint_prefix: String,
    pub target_prefix: Option<String>,
    #[serde(rename = "ops")]
    ops_json: Box<RawValue>,
    #[serde(rename = "shapes")]
    shapes_json: Box<RawValue>,
    #[serde(skip)]
    parsed: OnceLock<Parsed>,
}

/// A service's operations and shapes, parsed on first use.
#[derive(Debug, Default)]
struct Parsed {
    ops: HashMap<String, Op>,
    shapes: HashMap<String, Shape>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Op {
    /// HTTP method.
    pub m: String,
    /// Request URI template (`/{Bucket}/{Key+}?uploads`).
    pub u: String,
    /// Input shape.
    pub i: Option<String>,
    /// Output shape.
    pub o: Option<String>,
    /// Query protocol: the output's result wrapper element.
    pub rw: Option<String>,
    /// Required query-string members (`?uploadId`) and headers (`x-amz-copy-source`) of the input.
    #[serde(default)]
    pub rq: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Shape {
    /// `s` string, `i` integer, `f` float, `b` boolean, `t` timestamp, `B` blob, `S` structure, `L` list, `M` map.
    pub t: String,
    #[serde(default)]
    pub m: Vec<Member>,
    /// List element shape.
    pub e: Option<String>,
    /// List element / member location name.
    pub ln: Option<String>,
    #[serde(default)]
    pub fl: bool,
    /// Map value shape and the key's and value's location names.
    pub v: Option<String>,
    pub kn: Option<String>,
    pub vn: Option<String>,
    /// Structure: the member that is the HTTP payload (REST protocols).
    pub p: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Member {
    pub n: String,
    pub s: String,
    pub ln: Option<String>,
    pub qn: Option<String>,
    /// `uri`, `querystring`, `header`, `headers`, `statusCode`.
    pub loc: Option<String>,
    #[serde(default)]
    pub fl: bool,
}

/// The embedded table; empty if it cannot be decoded (a test asserts it can). A service whose operations
/// or shapes cannot be parsed has none.
pub(crate) fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut raw = Vec::new();
        let decoded = flate2::read::GzDecoder::new(TABLE_GZ)
            .read_to_end(&mut raw)
            .ok()
            .and_then(|_| serde_json::from_slice(&raw).ok());
        decoded.unwrap_or(Table { botocore: String::new(), services: Vec::new() })
    })
}

impl Service {
    pub fn has_protocol(&self, p: &str) -> bool {
        self.protocols.iter().any(|x| x == p)
    }

    fn parsed(&self) -> &Parsed {
        self.parsed.get_or_init(|| Parsed {
            ops: serde_json::from_str(self.ops_json.get()).unwrap_or_default(),
            shapes: serde_json::from_str(self.shapes_json.get()).unwrap_or_default(),
        })
    }

    pub fn ops(&self) -> &HashMap<String, Op> {
        &self.parsed().ops
    }

    pub fn op(&self, name: &str) -> Option<&Op> {
        self.ops().get(name)
    }

    pub fn shape(&self, name: &str) -> Option<&Shape> {
        self.parsed().shapes.get(name)
    }

    /// The query-protocol flavour: EC2 serialises lists and names differently.
    pub fn is_ec2(&self) -> bool {
        self.has_protocol("ec2")
    }
}

/// The services signed with this credential-scope service name.
pub(crate) fn by_signing_name(name: &str) -> impl Iterator<Item = &'static Service> {
    let name = name.to_owned();
    table().services.iter().filter(move |s| s.signing_name == name || s.endpoint_prefix == name)
}

/// The query-protocol services of this API version that have this operation (for unsigned calls).
pub(crate) fn by_version_and_op<'a>(version: &'a str, op: &'a str) -> impl Iterator<Item = &'static Service> + 'a {
    table().services.iter().filter(move |s| {
        s.api_version == version && (s.has_protocol("query") || s.has_protocol("ec2")) && s.op(op).is_some()
    })
}

/// The service whose JSON target prefix is this (`DynamoDB_20120810`, `secretsmanager`…).
pub(crate) fn by_target_prefix(prefix: &str) -> Option<&'static Service> {
    table().services.iter().find(|s| s.target_prefix.as_deref() == Some(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_table_decodes_with_every_service_and_operation() {
        let t = table();
        assert!(!t.botocore.is_empty());
        assert!(t.services.len() >= 40, "{} services", t.services.len());
        for s in &t.services {
            assert!(!s.ops().is_empty(), "{} has no operations", s.name);
            for (name, op) in s.ops() {
                if let Some(i) = &op.i {
                    assert!(s.shape(i).is_some(), "{}.{name}: input shape {i} missing", s.name);
                }
            }
        }
        let iam = by_signing_name("iam").next().expect("iam");
        assert!(iam.op("CreateUser").is_some());
        assert_eq!(by_target_prefix("TrentService").map(|s| s.name.as_str()), Some("kms"));
    }
}
