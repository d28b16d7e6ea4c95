//! `ListPublicKeys`: the server's signing keys whose validity overlaps the asked range, as PKCS#1 DER
//! in base64 with their MD5 fingerprints.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::lookup::parse_timestamp;
use crate::{App, CallContext};

pub(crate) fn list_public_keys(app: &App, ctx: &CallContext, params: &Value) -> Result<Value, ApiError> {
    // Either bound left out means "now" (AWS: without times, the current key).
    let time = |field: &str| match params.get(field) {
        None | Some(Value::Null) => Ok(ctx.now),
        Some(v) => parse_timestamp(v, field),
    };
    let (start, end) = (time("StartTime")?, time("EndTime")?);
    if start > end {
        return Err(ApiError::client(
            "InvalidTimeRangeException",
            format!("StartTime ({start}) must not be after EndTime ({end})"),
        ));
    }
    let keys: Vec<Value> = app
        .keys
        .valid_during(start, end)
        .map(|k| {
            json!({
                "Value": BASE64.encode(k.public_key_pkcs1_der()),
                "ValidityStartTime": k.validity_start().epoch_seconds_f64(),
                "ValidityEndTime": k.validity_end().epoch_seconds_f64(),
                "Fingerprint": k.fingerprint(),
            })
        })
        .collect();
    Ok(json!({ "PublicKeyList": keys }))
}
