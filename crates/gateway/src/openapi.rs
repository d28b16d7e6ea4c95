//! Event names of `kind = "http"` calls from an OpenAPI 3 document: the path templates (`/pets/{petId}`)
//! matched against the request path (concrete segments beat templated ones, as OpenAPI says), the
//! method's `operationId` the eventName; a base path from `servers[].url` is stripped first.

use std::path::{Path, PathBuf};

use serde_json::Value;

const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

#[derive(Debug, thiserror::Error)]
pub enum OpenApiError {
    #[error("cannot read OpenAPI document {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("OpenAPI document {}: {reason}", path.display())]
    Invalid { path: PathBuf, reason: String },
}

#[derive(Debug, Clone)]
struct Template {
    text: String,
    /// `None` = a `{param}` segment, with its name kept aside.
    segments: Vec<Option<String>>,
    params: Vec<String>,
    /// (lowercase method, operationId)
    operations: Vec<(String, String)>,
}

/// `{param}` names and values, in template order.
type Params = Vec<(String, String)>;

/// A loaded document.
#[derive(Debug, Clone, Default)]
pub struct OpenApi {
    templates: Vec<Template>,
    base_paths: Vec<String>,
}

/// What a request path matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub template: String,
    pub operation_id: Option<String>,
    /// `{param}` values, in template order.
    pub params: Vec<(String, String)>,
}

impl OpenApi {
    pub fn load(path: &Path) -> Result<OpenApi, OpenApiError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| OpenApiError::Read { path: path.to_path_buf(), source })?;
        let invalid = |reason: String| OpenApiError::Invalid { path: path.to_path_buf(), reason };
        let doc: Value = if text.trim_start().starts_with('{') {
            serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?
        } else {
            serde_yaml::from_str(&text).map_err(|e| invalid(e.to_string()))?
        };
        OpenApi::from_value(&doc).map_err(invalid)
    }

    pub fn from_value(doc: &Value) -> Result<OpenApi, String> {
        if !doc.get("openapi").and_then(Value::as_str).is_some_and(|v| v.starts_with('3')) {
            return Err("not an OpenAPI 3 document (no `openapi: 3.x`)".into());
        }
        let paths = doc.get("paths").and_then(Value::as_object).ok_or("no `paths` object")?;
        let mut templates = Vec::new();
        for (text, item) in paths {
            if !text.starts_with('/') {
                return Err(format!("path {text:?} does not start with /"));
            }
            let mut params = Vec::new();
            let segments = text
                .split('/')
                .skip(1)
                .map(|s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => {
                        params.push(name.to_string());
                        None
                    }
                    None => Some(s.to_string()),
                })
                .collect();
            let operations = METHODS
                .iter()
                .filter_map(|m| {
                    let op = item.get(*m)?.get("operationId")?.as_str()?;
                    Some((m.to_string(), op.to_string()))
                })
                .collect();
            templates.push(Template { text: text.clone(), segments, params, operations });
        }
        let base_paths = doc
            .get("servers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| s.get("url")?.as_str())
            .filter_map(|url| {
                let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
                let path = if url.contains("://") { after_scheme.find('/').map(|i| &after_scheme[i..])? } else { url };
                let path = path.trim_end_matches('/');
                (!path.is_empty()).then(|| path.to_string())
            })
            .collect();
        Ok(OpenApi { templates, base_paths })
    }

    /// The route `path` (without query) matches, and the operation of `method` on it if the document has one.
    pub fn route(&self, method: &str, path: &str) -> Option<Route> {
        let mut candidates = vec![path];
        for base in &self.base_paths {
            if let Some(rest) = path.strip_prefix(base.as_str())
                && (rest.is_empty() || rest.starts_with('/'))
            {
                candidates.push(if rest.is_empty() { "/" } else { rest });
            }
        }
        let method = method.to_ascii_lowercase();
        let mut best: Option<(usize, &Template, Params)> = None;
        for candidate in candidates {
            let segs: Vec<&str> = candidate.split('/').skip(1).collect();
            for t in &self.templates {
                if t.segments.len() != segs.len() {
                    continue;
                }
                let mut literal = 0;
                let mut values = Vec::new();
                let ok = t.segments.iter().zip(&segs).all(|(want, got)| match want {
                    Some(lit) => {
                        literal += 1;
                        lit == got
                    }
                    None => {
                        values.push(crate::redact::percent_decode(got));
                        !got.is_empty()
                    }
                });
                if ok && best.as_ref().is_none_or(|(n, _, _)| literal > *n) {
                    best = Some((literal, t, t.params.iter().cloned().zip(values).collect()));
                }
            }
        }
        best.map(|(_, t, params)| Route {
            template: t.text.clone(),
            operation_id: t.operations.iter().find(|(m, _)| *m == method).map(|(_, op)| op.clone()),
            params,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PETS: &str = r#"
openapi: 3.0.3
info: {title: pets, version: "1"}
servers:
  - url: http://pets.example.com/api
paths:
  /pets:
    get: {operationId: listPets}
    post: {operationId: createPet}
  /pets/{petId}:
    get: {operationId: showPetById}
    delete: {operationId: deletePet}
  /pets/mine:
    get: {operationId: listMyPets}
"#;

    fn pets() -> OpenApi {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pets.yaml");
        std::fs::write(&path, PETS).unwrap();
        OpenApi::load(&path).unwrap()
    }

    #[test]
    fn templates_match_and_literals_win() {
        let api = pets();
        let r = api.route("GET", "/pets/42").unwrap();
        assert_eq!(r.operation_id.as_deref(), Some("showPetById"));
        assert_eq!(r.params, vec![("petId".to_string(), "42".to_string())]);
        assert_eq!(api.route("GET", "/pets/mine").unwrap().operation_id.as_deref(), Some("listMyPets"));
        assert_eq!(api.route("post", "/pets").unwrap().operation_id.as_deref(), Some("createPet"));
        assert_eq!(api.route("GET", "/api/pets").unwrap().operation_id.as_deref(), Some("listPets"));
        let no_op = api.route("PUT", "/pets/42").unwrap();
        assert_eq!((no_op.template.as_str(), no_op.operation_id), ("/pets/{petId}", None));
        assert_eq!(api.route("GET", "/owners"), None);
        assert_eq!(api.route("GET", "/pets//"), None);
    }

    #[test]
    fn json_documents_load_and_non_openapi_ones_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        std::fs::write(&path, r#"{"openapi":"3.1.0","paths":{"/a":{"get":{"operationId":"getA"}}}}"#).unwrap();
        assert_eq!(OpenApi::load(&path).unwrap().route("GET", "/a").unwrap().operation_id.as_deref(), Some("getA"));
        std::fs::write(&path, r#"{"swagger":"2.0","paths":{}}"#).unwrap();
        let err = OpenApi::load(&path).unwrap_err().to_string();
        assert!(err.contains("a.json") && err.contains("OpenAPI 3"), "{err}");
    }
}
