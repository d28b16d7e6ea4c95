//! `ListPublicKeys`: the server's signing keys whose validity overlaps the asked range, as PKCS#1 DER
//! in base64 with their MD5 fingerprints.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::wire;
use crate::wire::keys::ListPublicKeysRequest;
use crate::{App, CallContext};

pub(crate) fn list_public_keys(app: &App, ctx: &CallContext, params: &Value) -> Result<Value, ApiError> {
    let (start, end) = wire::parse::<ListPublicKeysRequest>(params)?.range(ctx.now)?;
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
