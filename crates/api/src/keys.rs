//! The signing keys on the API: `ListPublicKeys` (the keys whose validity overlaps the asked range, as PKCS#1 DER
//! in base64 with their MD5 fingerprints), `RotateSigningKey`'s answer, and the `[keys] rotate_every` schedule.

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

/// The answer (and the audit record's `responseElements`) of `RotateSigningKey`: the new signing key.
pub(crate) fn rotation_answer(fingerprint: &str, validity_start: model::EventTime) -> Value {
    json!({ "Fingerprint": fingerprint, "ValidityStartTime": validity_start.epoch_seconds_f64() })
}

/// Hard-coded: how often the rotation schedule is looked at, at most (sooner for short periods).
const MAX_SCHEDULE_CHECK: std::time::Duration = std::time::Duration::from_secs(60);

/// `[keys] rotate_every`: rotates the signing key whenever the current one is that old, checked on a timer
/// on `runtime` until the runtime stops. A failed rotation is logged and tried again at the next check.
pub(crate) fn spawn_schedule(app: &std::sync::Arc<App>, runtime: &tokio::runtime::Handle) {
    let Some(every) = app.config.keys.rotate_every else { return };
    let every_millis = i64::try_from(every.as_millis()).unwrap_or(i64::MAX);
    let check = (every / 4).clamp(std::time::Duration::from_millis(250), MAX_SCHEDULE_CHECK);
    let (keys, clock) = (app.keys.clone(), app.clock.clone());
    runtime.spawn(async move {
        let mut ticks = tokio::time::interval(check);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let now = clock();
            if !keys.due(now, every_millis) {
                continue;
            }
            let keys = keys.clone();
            match tokio::task::spawn_blocking(move || keys.rotate(now)).await {
                Ok(Ok(key)) => tracing::info!(
                    fingerprint = key.fingerprint(),
                    every = ?every,
                    "rotated signing key on schedule"
                ),
                Ok(Err(error)) => tracing::warn!(%error, "scheduled signing key rotation failed; retrying later"),
                Err(error) => tracing::warn!(%error, "scheduled signing key rotation failed; retrying later"),
            }
        }
    });
}
