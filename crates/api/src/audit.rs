//! Self-audit: every authenticated call to any of opentrail's surfaces becomes a CloudTrail record of its
//! own, as AWS records CloudTrail's API calls: who, from where, with what tool, what was asked and answered,
//! and whether it failed. Oversized members are cut to fit, never dropped whole, and what was cut is named
//! in `additionalEventData`. Records carry the `SelfAudit` provenance, so no ingested copy can pass for one.

use model::cloudtrail::{CloudTrailEvent, ResourceRef, TlsDetails};
use model::{MAX_RECORD_BYTES, Provenance, Record};
use serde_json::{Map, Value, json};
use service::IngestItem;

use crate::error::ApiError;
use crate::operation::Surface;
use crate::{App, CallContext};

/// Hard-coded, as CloudTrail documents for its own records: `requestParameters` and `responseElements` keep
/// at most 100 KiB each; longer ones are cut.
pub const MAX_MEMBER_BYTES: usize = 100 * 1024;
/// Hard-coded: `errorMessage` and `userAgent` keep at most this many bytes.
const MAX_TEXT_BYTES: usize = 1024;
/// Hard-coded: at most this many cut paths are listed in `additionalEventData`.
const MAX_CUT_PATHS: usize = 50;
/// Marks a string that was cut.
const CUT_MARK: &str = "…[truncated]";

/// What one call did, for its audit record.
pub(crate) struct Facts<'a> {
    pub surface: Surface,
    pub event_name: &'a str,
    pub read_only: bool,
    /// `requestParameters` as the caller sent them (keys become lower-camel).
    pub request: &'a Value,
    /// `responseElements` on success (kept for calls that change something), or the error.
    pub result: Result<&'a Value, &'a ApiError>,
    /// What an S3 call addressed: its `resources`, and whether it is a data event (an object call).
    pub s3: Option<S3Facts>,
}

/// The S3 parts of a call's record, as CloudTrail writes its S3 events.
pub(crate) struct S3Facts {
    pub resources: Vec<ResourceRef>,
    /// An object call: `eventCategory` `Data`, `managementEvent` false.
    pub data_event: bool,
}

impl S3Facts {
    /// `AWS::S3::Object` (when a key is named) and `AWS::S3::Bucket` ARNs, as CloudTrail lists them.
    pub fn new(account: &str, addr: Option<&crate::operation::S3Address>, data_event: bool) -> S3Facts {
        let mut resources = Vec::new();
        if let Some(a) = addr {
            if let Some(k) = &a.key {
                resources.push(ResourceRef {
                    arn: Some(format!("arn:aws:s3:::{}/{k}", a.bucket)),
                    resource_type: Some("AWS::S3::Object".into()),
                    ..Default::default()
                });
            }
            resources.push(ResourceRef {
                arn: Some(format!("arn:aws:s3:::{}", a.bucket)),
                account_id: Some(account.to_string()),
                resource_type: Some("AWS::S3::Bucket".into()),
                ..Default::default()
            });
        }
        S3Facts { resources, data_event }
    }
}

/// Builds the call's record, cutting what does not fit. Returns the item to store and whether anything
/// was cut.
pub(crate) fn build(app: &App, ctx: &CallContext, facts: &Facts<'_>) -> Result<(IngestItem, bool), ApiError> {
    let mut cuts = Vec::new();
    // S3's records keep its own names (`bucketName`, `Host`, `list-type`).
    let params = if facts.s3.is_some() { facts.request.clone() } else { lower_camel(facts.request) };
    let params = match params {
        Value::Object(m) if m.is_empty() => Value::Null,
        Value::Null => Value::Null,
        v => fit(&v, MAX_MEMBER_BYTES, "requestParameters", &mut cuts),
    };
    let response = match facts.result {
        // CloudTrail leaves responseElements null for read-only calls (their answers can be huge).
        Ok(v) if !facts.read_only && v.as_object().is_some_and(|o| !o.is_empty()) => {
            fit(&lower_camel(v), MAX_MEMBER_BYTES, "responseElements", &mut cuts)
        }
        _ => Value::Null,
    };
    // Named as the caller saw it (cloudtrail-data names some errors its own way).
    let error = facts.result.err().map(|e| e.clone().for_surface(facts.surface));
    let error = error.as_ref();
    let text = |v: &str, field: &str, cuts: &mut Vec<Cut>| match fit(&json!(v), MAX_TEXT_BYTES, field, cuts) {
        Value::String(s) => s,
        _ => String::new(),
    };
    let user_agent = text(ctx.user_agent.as_deref().unwrap_or(""), "userAgent", &mut cuts);
    let error_message = error.map(|e| text(&e.message, "errorMessage", &mut cuts));
    let additional = (!cuts.is_empty()).then(|| {
        let listed: Vec<Value> = cuts
            .iter()
            .take(MAX_CUT_PATHS)
            .map(|c| json!({"path": c.path, "originalBytes": c.original_bytes}))
            .collect();
        json!({"truncated": {"cut": listed, "cutCount": cuts.len(), "limitBytes": MAX_MEMBER_BYTES}})
    });
    let data_event = facts.s3.as_ref().is_some_and(|s| s.data_event);
    let mut identity = ctx.principal.user_identity();
    if let Some(signed_in) = ctx.console_session {
        console_session_context(&mut identity, signed_in);
    }
    let event = CloudTrailEvent {
        event_version: Some("1.11".into()),
        user_identity: Some(identity),
        session_credential_from_console: ctx.console_session.map(|_| "true".to_string()),
        event_time: Some(ctx.now.to_rfc3339()),
        event_source: Some(facts.surface.event_source().into()),
        event_name: Some(facts.event_name.into()),
        aws_region: Some(app.config.region.clone()),
        source_ip_address: Some(ctx.source_ip.clone()),
        user_agent: Some(user_agent),
        error_code: error.map(|e| e.code.to_string()),
        error_message,
        request_parameters: Some(params),
        response_elements: Some(response),
        additional_event_data: additional,
        request_id: Some(ctx.request_id.clone()),
        event_id: Some(uuid::Uuid::new_v4().to_string()),
        read_only: Some(facts.read_only),
        event_type: Some("AwsApiCall".into()),
        management_event: Some(!data_event),
        recipient_account_id: Some(app.config.account_id.clone()),
        event_category: Some(if data_event { "Data" } else { "Management" }.into()),
        resources: facts.s3.as_ref().map(|s| s.resources.clone()).filter(|r| !r.is_empty()),
        tls_details: ctx.tls.as_ref().map(|tls| TlsDetails {
            tls_version: Some(tls.version.clone()),
            cipher_suite: Some(tls.cipher_suite.clone()),
            client_provided_host_header: Some(ctx.host.clone().or_else(|| tls.sni.clone()).unwrap_or_default()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let text = serde_json::to_string(&event).map_err(|e| ApiError::internal(&e))?;
    debug_assert!(text.len() < MAX_RECORD_BYTES, "members are cut to fit a record");
    let mut record = Record::parse(text.as_bytes(), || uuid::Uuid::new_v4().to_string())
        .map_err(|e| ApiError::internal(&format!("self-audit record is invalid: {e}")))?;
    record.fields.provenance = Provenance::SelfAudit;
    Ok((IngestItem { record, client_id: false }, !cuts.is_empty()))
}

/// One member that was cut: where, and how big it was.
struct Cut {
    path: String,
    original_bytes: usize,
}

fn encoded_len(v: &Value) -> usize {
    serde_json::to_string(v).map_or(0, |s| s.len())
}

/// Bytes `c` takes inside a JSON string as serde_json writes it: two for the short escapes, six for other
/// control characters (`\u00XX`), its UTF-8 length otherwise.
fn escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// `v` cut to at most `budget` bytes of JSON: objects keep their members in order while they fit (the
/// first that does not is cut in turn), arrays keep a prefix, strings are cut at a char boundary and end in
/// [`CUT_MARK`]. Each cut is recorded with its path.
fn fit(v: &Value, budget: usize, path: &str, cuts: &mut Vec<Cut>) -> Value {
    let len = encoded_len(v);
    if len <= budget {
        return v.clone();
    }
    cuts.push(Cut { path: path.to_string(), original_bytes: len });
    match v {
        Value::String(s) => {
            // Two quotes, the mark, and room for escapes of what is kept.
            let room = budget.saturating_sub(2 + CUT_MARK.len());
            let mut kept = String::new();
            let mut used = 0;
            for c in s.chars() {
                let c_len = escaped_len(c);
                if used + c_len > room {
                    break;
                }
                used += c_len;
                kept.push(c);
            }
            kept.push_str(CUT_MARK);
            Value::String(kept)
        }
        Value::Object(m) => {
            let mut out = Map::new();
            let mut used = 2; // {}
            for (k, child) in m {
                let key_len = encoded_len(&json!(k)) + 2; // "key": and a comma
                let child_len = encoded_len(child);
                let child_path = format!("{path}.{k}");
                if used + key_len + child_len <= budget {
                    out.insert(k.clone(), child.clone());
                    used += key_len + child_len;
                } else if budget > used + key_len + 64 {
                    let part = fit(child, budget - used - key_len, &child_path, cuts);
                    used += key_len + encoded_len(&part);
                    out.insert(k.clone(), part);
                } else {
                    cuts.push(Cut { path: child_path, original_bytes: child_len });
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => {
            let mut out = Vec::new();
            let mut used = 2;
            for (i, item) in items.iter().enumerate() {
                let item_len = encoded_len(item) + 1;
                if used + item_len > budget {
                    cuts.push(Cut { path: format!("{path}[{i}..]"), original_bytes: len.saturating_sub(used) });
                    break;
                }
                used += item_len;
                out.push(item.clone());
            }
            Value::Array(out)
        }
        // A number or a boolean longer than the budget cannot happen for budgets this size.
        _ => Value::Null,
    }
}

/// CloudTrail writes requestParameters/responseElements with lower-camel keys (`trailName`, not `TrailName`).
pub(crate) fn lower_camel(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let mut key = String::with_capacity(k.len());
                    let mut chars = k.chars();
                    if let Some(first) = chars.next() {
                        key.extend(first.to_lowercase());
                        key.push_str(chars.as_str());
                    }
                    (key, lower_camel(v))
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(lower_camel).collect()),
        other => other.clone(),
    }
}

/// A console session's `sessionContext`, as CloudTrail writes an IAM user's console calls: the session's
/// `creationDate` and `mfaAuthenticated` (no MFA here), beside the issuer an assumed role already has.
fn console_session_context(identity: &mut model::cloudtrail::UserIdentity, signed_in: model::EventTime) {
    let ctx = identity.session_context.get_or_insert_with(Default::default);
    ctx.attributes = Some(model::cloudtrail::SessionAttributes {
        creation_date: Some(signed_in.to_rfc3339()),
        mfa_authenticated: Some("false".into()),
        ..Default::default()
    });
}

/// One console sign-in, as AWS records `ConsoleLogin`.
pub(crate) struct SignIn<'a> {
    /// The principal signed in as, or `None` for an unknown user or access key.
    pub principal: Option<&'a service::Principal>,
    /// The console user's name (`[console] users`), when signed in with a password.
    pub console_user: Option<&'a str>,
    /// `None` on success; the failure's `errorMessage`.
    pub error: Option<&'a str>,
    /// `additionalEventData.LoginTo`: the console's address.
    pub login_to: String,
    pub source_ip: String,
    pub user_agent: Option<String>,
    pub now: model::EventTime,
}

/// The `AwsConsoleSignIn` record of a sign-in (`signin.amazonaws.com`, `ConsoleLogin`,
/// `responseElements.ConsoleLogin` Success or Failure, `additionalEventData` LoginTo, MobileVersion and
/// MFAUsed), with the `SelfAudit` provenance. An unknown user is `HIDDEN_DUE_TO_SECURITY_REASONS`, as AWS
/// hides a mistyped name that may be a password.
pub(crate) fn sign_in_record(app: &App, s: &SignIn<'_>) -> Result<IngestItem, ApiError> {
    let identity = match s.principal {
        Some(p) => {
            let mut id = p.user_identity();
            // AWS leaves the key empty on console sign-ins: no access key was used.
            id.access_key_id = Some(String::new());
            id
        }
        None => model::cloudtrail::UserIdentity {
            identity_type: Some("IAMUser".into()),
            account_id: Some(app.config.account_id.clone()),
            access_key_id: Some(String::new()),
            user_name: Some("HIDDEN_DUE_TO_SECURITY_REASONS".into()),
            ..Default::default()
        },
    };
    let ua = s.user_agent.clone().unwrap_or_default();
    let mut cuts = Vec::new();
    let ua = match fit(&json!(ua), MAX_TEXT_BYTES, "userAgent", &mut cuts) {
        Value::String(v) => v,
        _ => String::new(),
    };
    let mobile = if ua.contains("Mobile") { "Yes" } else { "No" };
    let mut additional = json!({"LoginTo": s.login_to, "MobileVersion": mobile, "MFAUsed": "No"});
    if let Some(u) = s.console_user {
        additional["ConsoleUser"] = json!(u);
    }
    let event = CloudTrailEvent {
        event_version: Some("1.11".into()),
        user_identity: Some(identity),
        event_time: Some(s.now.to_rfc3339()),
        event_source: Some("signin.amazonaws.com".into()),
        event_name: Some("ConsoleLogin".into()),
        aws_region: Some(app.config.region.clone()),
        source_ip_address: Some(s.source_ip.clone()),
        user_agent: Some(ua),
        error_message: s.error.map(str::to_string),
        request_parameters: Some(Value::Null),
        response_elements: Some(json!({"ConsoleLogin": if s.error.is_none() { "Success" } else { "Failure" }})),
        additional_event_data: Some(additional),
        event_id: Some(uuid::Uuid::new_v4().to_string()),
        read_only: Some(false),
        event_type: Some("AwsConsoleSignIn".into()),
        management_event: Some(true),
        recipient_account_id: Some(app.config.account_id.clone()),
        event_category: Some("Management".into()),
        ..Default::default()
    };
    let text = serde_json::to_string(&event).map_err(|e| ApiError::internal(&e))?;
    let mut record = Record::parse(text.as_bytes(), || uuid::Uuid::new_v4().to_string())
        .map_err(|e| ApiError::internal(&format!("sign-in record is invalid: {e}")))?;
    record.fields.provenance = Provenance::SelfAudit;
    Ok(IngestItem { record, client_id: false })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_lower_camel_recursively() {
        let v = json!({"TrailName": "t", "LookupAttributes": [{"AttributeKey": "EventName"}], "isX": 1});
        assert_eq!(
            lower_camel(&v),
            json!({"trailName": "t", "lookupAttributes": [{"attributeKey": "EventName"}], "isX": 1})
        );
    }

    #[test]
    fn an_oversized_member_is_cut_to_fit_and_named() {
        let big = "z".repeat(300 * 1024);
        let v = json!({"name": "t", "zz": big, "after": "kept?"});
        let mut cuts = Vec::new();
        let out = fit(&v, MAX_MEMBER_BYTES, "requestParameters", &mut cuts);
        assert!(encoded_len(&out) <= MAX_MEMBER_BYTES, "{}", encoded_len(&out));
        assert_eq!(out["name"], "t", "what fits is kept");
        let zz = out["zz"].as_str().unwrap();
        assert!(zz.ends_with(CUT_MARK) && zz.len() > 90 * 1024, "the cut member keeps what fits");
        let paths: Vec<&str> = cuts.iter().map(|c| c.path.as_str()).collect();
        assert!(paths.contains(&"requestParameters.zz"), "{paths:?}");
        assert!(cuts.iter().any(|c| c.original_bytes > 300 * 1024));
    }

    #[test]
    fn cut_strings_stay_valid_with_multibyte_and_escaped_characters() {
        let v = json!("é\"\n".repeat(1000));
        let mut cuts = Vec::new();
        let out = fit(&v, 500, "x", &mut cuts);
        assert!(encoded_len(&out) <= 500);
        assert!(out.as_str().unwrap().ends_with(CUT_MARK));
    }

    #[test]
    fn escaped_lengths_are_what_serde_json_writes() {
        for c in ['a', 'é', '€', '😀', '"', '\\', '\n', '\u{8}', '\u{1}', '\u{1f}', '/', '\u{7f}'] {
            assert_eq!(escaped_len(c), encoded_len(&json!(c.to_string())) - 2, "{c:?}");
        }
    }

    #[test]
    fn long_arrays_keep_a_prefix() {
        let v = json!((0..10_000).collect::<Vec<_>>());
        let mut cuts = Vec::new();
        let out = fit(&v, 1000, "ids", &mut cuts);
        assert!(encoded_len(&out) <= 1000);
        assert_eq!(out[0], 0);
        assert!(cuts.iter().any(|c| c.path.starts_with("ids[")));
    }
}
