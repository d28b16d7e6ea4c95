//! Shape-driven conversion of wire data into CloudTrail's JSON: member names as CloudTrail writes them
//! (Java bean names: `userName`, `AWSAccountId`), scalars typed by the model, lists and maps as each protocol
//! writes them, blobs left out (CloudTrail does not log payload bytes). Without a shape the conversion is
//! generic: names decapitalised, values as strings.

use serde_json::{Map, Value};

use crate::model::{Service, Shape};
use crate::xml::Element;

/// Request data or response data: timestamps in responses are written the way CloudTrail writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    Request,
    Response,
}

/// Java's `Introspector.decapitalize`: `UserName` → `userName`, `AWSAccountId` stays.
pub(crate) fn decapitalize(name: &str) -> String {
    let mut chars = name.chars();
    let Some(first) = chars.next() else { return String::new() };
    if let Some(second) = chars.next()
        && first.is_uppercase()
        && second.is_uppercase()
    {
        return name.to_owned();
    }
    first.to_lowercase().chain(name[first.len_utf8()..].chars()).collect()
}

fn capitalize(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(f) => f.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn scalar(shape: Option<&Shape>, text: &str, dir: Dir) -> Value {
    match shape.map(|s| s.t.as_str()) {
        Some("i") => text.trim().parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::from(text)),
        Some("f") => text
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
            .unwrap_or_else(|| Value::from(text)),
        Some("b") => match text.trim() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::from(text),
        },
        Some("t") if dir == Dir::Response => crate::time::parse_iso8601(text)
            .map(|ms| Value::from(crate::time::java_date(ms)))
            .unwrap_or_else(|| Value::from(text)),
        _ => Value::from(text),
    }
}

// ---- JSON bodies (JSON 1.0/1.1, REST-JSON) ----

/// A JSON body against its shape.
pub(crate) fn from_json(svc: Option<&Service>, shape: Option<&str>, v: &Value, dir: Dir, depth: usize) -> Value {
    let sh = shape.and_then(|n| svc.and_then(|s| s.shape(n)));
    if depth > 64 {
        return Value::Null;
    }
    match (v, sh) {
        (Value::Object(o), Some(sh)) if sh.t == "S" => {
            let mut out = Map::new();
            for (k, val) in o {
                match sh.m.iter().find(|m| &m.n == k) {
                    Some(m) => {
                        if svc.and_then(|s| s.shape(&m.s)).is_some_and(|x| x.t == "B") {
                            continue;
                        }
                        out.insert(decapitalize(k), from_json(svc, Some(&m.s), val, dir, depth + 1));
                    }
                    None => {
                        out.insert(decapitalize(k), from_json(None, None, val, dir, depth + 1));
                    }
                }
            }
            Value::Object(out)
        }
        (Value::Object(o), Some(sh)) if sh.t == "M" => {
            let vs = sh.v.as_deref();
            Value::Object(o.iter().map(|(k, val)| (k.clone(), from_json(svc, vs, val, dir, depth + 1))).collect())
        }
        (Value::Array(a), Some(sh)) if sh.t == "L" => {
            let es = sh.e.as_deref();
            Value::Array(a.iter().map(|x| from_json(svc, es, x, dir, depth + 1)).collect())
        }
        (Value::Number(n), Some(sh)) if sh.t == "t" && dir == Dir::Response => match n.as_f64() {
            Some(secs) if secs.is_finite() && secs.abs() < 1e13 => {
                Value::from(crate::time::java_date((secs * 1000.0) as i64))
            }
            _ => v.clone(),
        },
        (Value::Object(o), None) => Value::Object(
            o.iter().map(|(k, val)| (decapitalize(k), from_json(None, None, val, dir, depth + 1))).collect(),
        ),
        (Value::Array(a), None) => Value::Array(a.iter().map(|x| from_json(None, None, x, dir, depth + 1)).collect()),
        _ => v.clone(),
    }
}

// ---- Query / EC2 request parameters ----

/// A form's keys split at `.`: `Tags.member.1.Key=k` → Tags → member → 1 → Key.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    pub value: Option<String>,
    pub children: Vec<(String, Tree)>,
}

impl Tree {
    pub fn from_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Tree {
        let mut root = Tree::default();
        for (k, v) in pairs {
            let mut node = &mut root;
            // Hard-coded bound on nesting; deeper keys are kept flat at the bound.
            for seg in k.split('.').take(32) {
                let at = match node.children.iter().position(|(n, _)| n == seg) {
                    Some(at) => at,
                    None => {
                        node.children.push((seg.to_owned(), Tree::default()));
                        node.children.len() - 1
                    }
                };
                node = &mut node.children[at].1;
            }
            node.value = Some(v.to_owned());
        }
        root
    }

    pub fn child(&self, name: &str) -> Option<&Tree> {
        self.children.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// Numbered children in numeric order (`1`, `2`, … `10`).
    fn numbered(&self) -> Vec<&Tree> {
        let mut v: Vec<(u64, &Tree)> =
            self.children.iter().filter_map(|(n, t)| n.parse::<u64>().ok().map(|i| (i, t))).collect();
        v.sort_by_key(|(i, _)| *i);
        v.into_iter().map(|(_, t)| t).collect()
    }
}

/// EC2's list names, where CloudTrail does not follow the rule `<name>Set` / `<name>s`:
/// (wire location name, CloudTrail's name, the item key of a scalar list or `""` for a plain array).
const EC2_LISTS: &[(&str, &str, &str)] = &[
    ("InstanceId", "instancesSet", "instanceId"),
    ("SecurityGroupId", "groupSet", "groupId"),
    ("SecurityGroup", "groupSet", "groupName"),
    ("ImageId", "imagesSet", "imageId"),
    ("VolumeId", "volumeSet", "volumeId"),
    ("SnapshotId", "snapshotSet", "snapshotId"),
    ("Owner", "ownersSet", "owner"),
    ("BlockDeviceMapping", "blockDeviceMapping", ""),
    ("Tag", "tags", "-"),
    ("Value", "valueSet", "value"),
    ("GroupId", "securityGroupIdSet", "groupId"),
    ("GroupName", "securityGroupSet", "groupName"),
    ("VpcId", "vpcSet", "vpcId"),
];

/// EC2 structures whose absent lists CloudTrail still writes, as `{}` (`groups`, `ipv6Ranges`,
/// `prefixListIds` of an `ipPermissions` item). A `Describe*` call's top-level lists are written the same
/// way (`{"instancesSet":{},"filterSet":{}}`): see [`from_query_call`].
const EC2_EMPTY_LISTS_IN: &[&str] = &["IpPermission"];

/// A query-protocol call's parameters: [`from_query`] at the top, plus EC2's empty top-level lists of a
/// `Describe*` call.
pub(crate) fn from_query_call(svc: Option<&Service>, op: &str, input: Option<&str>, t: &Tree) -> Value {
    let mut v = from_query(svc, input, t, 0);
    let ec2 = svc.is_some_and(|s| s.is_ec2());
    if ec2 && op.starts_with("Describe") {
        fill_empty_ec2_lists(svc, input, &mut v);
    }
    v
}

fn fill_empty_ec2_lists(svc: Option<&Service>, shape: Option<&str>, v: &mut Value) {
    let (Some(sh), Value::Object(out)) = (shape.and_then(|n| svc.and_then(|s| s.shape(n))), v) else { return };
    for m in &sh.m {
        if svc.and_then(|s| s.shape(&m.s)).is_some_and(|x| x.t == "L") {
            let (name, _) = ec2_list_name(m.ln.as_deref().unwrap_or(&m.n));
            out.entry(name).or_insert_with(|| Value::Object(Map::new()));
        }
    }
}

/// CloudTrail's name of an EC2 list, and its override row if it has one.
fn ec2_list_name(ln: &str) -> (String, Option<&'static (&'static str, &'static str, &'static str)>) {
    let over = EC2_LISTS.iter().find(|(w, _, _)| w.eq_ignore_ascii_case(ln));
    let name = match over {
        Some((_, n, _)) => (*n).to_owned(),
        None => {
            let base = decapitalize(ln);
            if base.ends_with('s') || base.ends_with("Set") { base } else { format!("{base}Set") }
        }
    };
    (name, over)
}

pub(crate) fn from_query(svc: Option<&Service>, shape: Option<&str>, t: &Tree, depth: usize) -> Value {
    let ec2 = svc.is_some_and(|s| s.is_ec2());
    let sh = shape.and_then(|n| svc.and_then(|s| s.shape(n)));
    if depth > 32 {
        return Value::Null;
    }
    match sh {
        Some(sh) if sh.t == "S" => {
            let mut out = Map::new();
            let mut used: Vec<&str> = Vec::new();
            for m in &sh.m {
                let wire = if ec2 {
                    m.qn.clone().or_else(|| m.ln.as_deref().map(capitalize)).unwrap_or_else(|| m.n.clone())
                } else {
                    m.ln.clone().unwrap_or_else(|| m.n.clone())
                };
                let Some(child) = t.child(&wire) else { continue };
                used.push(t.children.iter().find(|(n, _)| *n == wire).map(|(n, _)| n.as_str()).unwrap_or(""));
                let msh = svc.and_then(|s| s.shape(&m.s));
                if msh.is_some_and(|x| x.t == "B") {
                    continue;
                }
                if ec2 && msh.is_some_and(|x| x.t == "L") {
                    let (name, value) = ec2_list(svc, msh, &wire, m.ln.as_deref().unwrap_or(&m.n), child, depth);
                    out.insert(name, value);
                } else {
                    let name = if ec2 { decapitalize(m.ln.as_deref().unwrap_or(&m.n)) } else { decapitalize(&m.n) };
                    out.insert(name, from_query_member(svc, &m.s, m.fl, child, depth + 1));
                }
            }
            for (n, c) in &t.children {
                if !used.contains(&n.as_str()) && !(depth == 0 && (n == "Action" || n == "Version")) {
                    out.insert(decapitalize(n), generic_query(c, depth + 1));
                }
            }
            let mut v = Value::Object(out);
            if ec2 && shape.is_some_and(|n| EC2_EMPTY_LISTS_IN.contains(&n)) {
                fill_empty_ec2_lists(svc, shape, &mut v);
            }
            v
        }
        _ => from_query_member(svc, shape.unwrap_or(""), false, t, depth),
    }
}

fn from_query_member(svc: Option<&Service>, shape: &str, flattened: bool, t: &Tree, depth: usize) -> Value {
    let sh = svc.and_then(|s| s.shape(shape));
    match sh {
        Some(sh) if sh.t == "S" => from_query(svc, Some(shape), t, depth),
        Some(sh) if sh.t == "L" => {
            let items = if flattened || sh.fl || svc.is_some_and(|s| s.is_ec2()) {
                t
            } else {
                t.child(sh.ln.as_deref().unwrap_or("member")).unwrap_or(t)
            };
            let es = sh.e.as_deref().unwrap_or("");
            Value::Array(
                items.numbered().into_iter().map(|c| from_query_member(svc, es, false, c, depth + 1)).collect(),
            )
        }
        Some(sh) if sh.t == "M" => {
            let entries = if flattened || sh.fl { t } else { t.child("entry").unwrap_or(t) };
            let (kn, vn) = (sh.kn.as_deref().unwrap_or("key"), sh.vn.as_deref().unwrap_or("value"));
            let vs = sh.v.as_deref().unwrap_or("");
            let mut out = Map::new();
            for e in entries.numbered() {
                if let Some(k) = e.child(kn).and_then(|k| k.value.clone()) {
                    let v = e.child(vn).map(|v| from_query_member(svc, vs, false, v, depth + 1)).unwrap_or(Value::Null);
                    out.insert(k, v);
                }
            }
            Value::Object(out)
        }
        Some(sh) => t.value.as_deref().map(|v| scalar(Some(sh), v, Dir::Request)).unwrap_or(Value::Null),
        None => generic_query(t, depth),
    }
}

/// EC2 lists as CloudTrail writes them: `{"items":[…]}` under `<name>Set` (or the name when it is plural).
fn ec2_list(
    svc: Option<&Service>,
    sh: Option<&Shape>,
    _wire: &str,
    ln: &str,
    t: &Tree,
    depth: usize,
) -> (String, Value) {
    let es = sh.and_then(|s| s.e.as_deref()).unwrap_or("");
    let elem = svc.and_then(|s| s.shape(es));
    let scalar_items = elem.is_some_and(|e| !matches!(e.t.as_str(), "S" | "L" | "M"));
    let (name, over) = ec2_list_name(ln);
    let items: Vec<Value> = t
        .numbered()
        .into_iter()
        .map(|c| {
            let v = from_query_member(svc, es, false, c, depth + 1);
            if scalar_items {
                let key = match over {
                    Some((_, _, k)) if !k.is_empty() && *k != "-" => (*k).to_owned(),
                    _ => decapitalize(ln),
                };
                Value::Object(Map::from_iter([(key, v)]))
            } else {
                v
            }
        })
        .collect();
    if over.is_some_and(|(_, _, k)| *k == "-") {
        return (name, Value::Array(items));
    }
    (name, Value::Object(Map::from_iter([("items".to_owned(), Value::Array(items))])))
}

/// Without a shape: numbered children and `member` lists become arrays, names are decapitalised.
pub(crate) fn generic_query(t: &Tree, depth: usize) -> Value {
    if t.children.is_empty() || depth > 32 {
        return t.value.clone().map(Value::from).unwrap_or(Value::Null);
    }
    let list = t.child("member").unwrap_or(t);
    let numbered = list.numbered();
    if !numbered.is_empty() && numbered.len() == list.children.len() {
        return Value::Array(numbered.into_iter().map(|c| generic_query(c, depth + 1)).collect());
    }
    Value::Object(t.children.iter().map(|(n, c)| (decapitalize(n), generic_query(c, depth + 1))).collect())
}

// ---- XML bodies (query/EC2 responses, REST-XML bodies) ----

/// An XML element against its shape. `ec2` writes lists as `{"items":[…]}` and `return` as `_return`.
pub(crate) fn from_xml(svc: Option<&Service>, shape: Option<&str>, el: &Element, dir: Dir, depth: usize) -> Value {
    let ec2 = svc.is_some_and(|s| s.is_ec2());
    let sh = shape.and_then(|n| svc.and_then(|s| s.shape(n)));
    if depth > 64 {
        return Value::Null;
    }
    match sh {
        Some(sh) if sh.t == "S" => {
            let mut out = Map::new();
            for c in &el.children {
                let m = sh.m.iter().find(|m| m.ln.as_deref().unwrap_or(&m.n) == c.name && m.loc.is_none());
                let name = if ec2 {
                    if c.name == "return" { "_return".to_owned() } else { decapitalize(&c.name) }
                } else {
                    decapitalize(m.map(|m| m.n.as_str()).unwrap_or(&c.name))
                };
                match m {
                    Some(m) => {
                        let msh = svc.and_then(|s| s.shape(&m.s));
                        if msh.is_some_and(|x| x.t == "B") {
                            continue;
                        }
                        if (m.fl || msh.is_some_and(|x| x.fl)) && msh.is_some_and(|x| x.t == "L") {
                            // Flattened: each repeated element is one item.
                            let es = msh.and_then(|x| x.e.as_deref());
                            let item = from_xml(svc, es, c, dir, depth + 1);
                            if let Value::Array(a) = out.entry(name).or_insert_with(|| Value::Array(Vec::new())) {
                                a.push(item);
                            }
                        } else {
                            out.insert(name, from_xml(svc, Some(&m.s), c, dir, depth + 1));
                        }
                    }
                    None => {
                        out.insert(name, generic_xml(c, ec2, depth + 1));
                    }
                }
            }
            Value::Object(out)
        }
        Some(sh) if sh.t == "L" => {
            let es = sh.e.as_deref();
            let items: Vec<Value> = el.children.iter().map(|c| from_xml(svc, es, c, dir, depth + 1)).collect();
            if ec2 {
                if items.is_empty() {
                    Value::Object(Map::new())
                } else {
                    Value::Object(Map::from_iter([("items".to_owned(), Value::Array(items))]))
                }
            } else {
                Value::Array(items)
            }
        }
        Some(sh) if sh.t == "M" => {
            let (kn, vn) = (sh.kn.as_deref().unwrap_or("key"), sh.vn.as_deref().unwrap_or("value"));
            let vs = sh.v.as_deref();
            let mut out = Map::new();
            for e in &el.children {
                if let Some(k) = e.child(kn) {
                    let v = e.child(vn).map(|v| from_xml(svc, vs, v, dir, depth + 1)).unwrap_or(Value::Null);
                    out.insert(k.text.clone(), v);
                }
            }
            Value::Object(out)
        }
        Some(sh) => {
            if ec2 && sh.t == "t" && dir == Dir::Response {
                // EC2's responseElements carry times as epoch milliseconds.
                return crate::time::parse_iso8601(&el.text)
                    .map(Value::from)
                    .unwrap_or_else(|| Value::from(el.text.clone()));
            }
            scalar(Some(sh), &el.text, dir)
        }
        None => generic_xml(el, ec2, depth),
    }
}

/// Without a shape: repeated `member`/`item` children become arrays (EC2: `{"items":[…]}`).
pub(crate) fn generic_xml(el: &Element, ec2: bool, depth: usize) -> Value {
    if depth > 64 {
        return Value::Null;
    }
    if el.children.is_empty() {
        return Value::from(el.text.clone());
    }
    if el.children.iter().all(|c| c.name == "member" || c.name == "item") {
        let items: Vec<Value> = el.children.iter().map(|c| generic_xml(c, ec2, depth + 1)).collect();
        return if ec2 {
            Value::Object(Map::from_iter([("items".to_owned(), Value::Array(items))]))
        } else {
            Value::Array(items)
        };
    }
    Value::Object(
        el.children
            .iter()
            .map(|c| {
                let n = if ec2 && c.name == "return" { "_return".to_owned() } else { decapitalize(&c.name) };
                (n, generic_xml(c, ec2, depth + 1))
            })
            .collect(),
    )
}

/// S3's request bodies, as CloudTrail writes them: element names kept, `xmlns` as a member.
pub(crate) fn raw_xml(el: &Element, depth: usize) -> Value {
    if depth > 64 {
        return Value::Null;
    }
    if el.children.is_empty() && el.attrs.is_empty() {
        return Value::from(el.text.clone());
    }
    let mut out = Map::new();
    for (k, v) in &el.attrs {
        out.insert(k.clone(), Value::from(v.clone()));
    }
    for c in &el.children {
        let v = raw_xml(c, depth + 1);
        match out.get_mut(&c.name) {
            Some(Value::Array(a)) => a.push(v),
            Some(prev) => {
                let first = prev.take();
                *prev = Value::Array(vec![first, v]);
            }
            None => {
                out.insert(c.name.clone(), v);
            }
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decapitalizes_like_java_beans() {
        assert_eq!(decapitalize("UserName"), "userName");
        assert_eq!(decapitalize("AWSAccountId"), "AWSAccountId");
        assert_eq!(decapitalize("a"), "a");
        assert_eq!(decapitalize(""), "");
    }

    #[test]
    fn generic_query_makes_member_lists_arrays() {
        let t = Tree::from_pairs(
            [
                ("Tags.member.1.Key", "a"),
                ("Tags.member.1.Value", "b"),
                ("Tags.member.2.Key", "c"),
                ("UserName", "Mary"),
            ]
            .into_iter(),
        );
        let v = generic_query(&t, 0);
        assert_eq!(v, serde_json::json!({"tags":[{"key":"a","value":"b"},{"key":"c"}],"userName":"Mary"}));
    }
}
