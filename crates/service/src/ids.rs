//! References to control-plane resources with UUID ids (channels, event data stores): an ARN or a bare id,
//! and the pagination tokens of their List calls. One parser for both.

use model::EventTime;

/// Why a reference names no resource here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefError {
    /// Not a reference of this kind at all.
    Invalid,
    /// A well-formed ARN of another Region or account: a resource that is not here.
    Elsewhere,
}

/// The id (lower-case UUID) named by `reference`: a bare UUID, or
/// `arn:<partition>:cloudtrail:<region>:<account>:<resource_prefix><uuid>` of this `region` and `account`.
pub(crate) fn resolve(
    reference: &str,
    resource_prefix: &str,
    region: &str,
    account_id: &str,
) -> Result<String, RefError> {
    let Some(rest) = reference.strip_prefix("arn:") else {
        return uuid::Uuid::try_parse(reference).map(|u| u.to_string()).map_err(|_| RefError::Invalid);
    };
    let parts: Vec<&str> = rest.splitn(5, ':').collect();
    let [partition, service, region_of, account, resource] = parts[..] else { return Err(RefError::Invalid) };
    let id = resource.strip_prefix(resource_prefix).ok_or(RefError::Invalid)?;
    let id = uuid::Uuid::try_parse(id).map_err(|_| RefError::Invalid)?.to_string();
    if partition.is_empty() || service != "cloudtrail" || account.len() != 12 {
        return Err(RefError::Invalid);
    }
    if region_of != region || account != account_id {
        return Err(RefError::Elsewhere);
    }
    Ok(id)
}

/// A List call's NextToken, `<creation ms>:<uuid>`: where the next page starts.
pub(crate) fn parse_token(t: &str) -> Option<(EventTime, String)> {
    let (ms, id) = t.split_once(':')?;
    Some((EventTime(ms.parse().ok()?), uuid::Uuid::try_parse(id).ok()?.to_string()))
}
