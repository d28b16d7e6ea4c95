//! Parsing the two SigV4 carriers, the `Authorization` header and the presigned query, into one checked form.

use sha2::{Digest, Sha256};

use crate::SigV4Error;
use crate::canonical::percent_decode;
use crate::time::parse_amz_date;

pub(crate) const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const TERMINATOR: &str = "aws4_request";
/// Hard-coded, as S3 does: a presigned URL may live at most seven days.
const MAX_PRESIGNED_EXPIRES_SECS: i64 = 7 * 24 * 3600;

/// The parameters of an `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` header,
/// as written (not yet checked against the request). Unknown parameters are ignored, as AWS does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationHeader<'a> {
    pub algorithm: &'a str,
    pub credential: Option<&'a str>,
    pub signed_headers: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Splits an `Authorization` header value into its algorithm and `key=value` parameters.
///
/// Fails only on a parameter without `=` or a repeated parameter; missing parameters are reported by the caller,
/// which also knows whether the date header is there (AWS lists all of them in one message).
pub fn parse_authorization_header(value: &str) -> Result<AuthorizationHeader<'_>, SigV4Error> {
    let value = value.trim();
    let (algorithm, params) = value.split_once(|c: char| c.is_ascii_whitespace()).unwrap_or((value, ""));
    let mut out = AuthorizationHeader { algorithm, credential: None, signed_headers: None, signature: None };
    for pair in params.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((key, val)) = pair.split_once('=') else {
            // AWS does not echo the pair back (it could be a secret pasted by mistake): it hashes it.
            return Err(incomplete(format!(
                "Invalid key=value pair (missing equal-sign) in Authorization header (hashed with SHA-256 and \
                 encoded with Base64): '{}'.",
                base64(&Sha256::digest(pair.as_bytes()))
            )));
        };
        let (key, val) = (key.trim(), val.trim());
        let slot = match key {
            "Credential" => &mut out.credential,
            "SignedHeaders" => &mut out.signed_headers,
            "Signature" => &mut out.signature,
            _ => continue,
        };
        if slot.replace(val).is_some() {
            return Err(incomplete(format!("Authorization header has a repeated '{key}' parameter.")));
        }
    }
    Ok(out)
}

/// Everything the signature check needs, from either carrier, syntactically valid.
#[derive(Debug)]
pub(crate) struct AuthInput {
    pub access_key_id: String,
    pub scope_date: String,
    pub region: String,
    pub service: String,
    /// Lower-cased, in the order the client listed them.
    pub signed_headers: Vec<String>,
    pub signature: String,
    /// As sent; it goes into the string to sign verbatim.
    pub amz_date: String,
    pub signed_at: i64,
    /// `Some(X-Amz-Expires)` for a presigned request.
    pub presigned_expires_secs: Option<i64>,
}

/// Reads the SigV4 parameters from whichever carrier the request uses.
pub(crate) fn auth_input(query: &str, headers: &[(String, String)]) -> Result<AuthInput, SigV4Error> {
    let mut authorization = headers.iter().filter(|(n, _)| n.trim().eq_ignore_ascii_case("authorization"));
    let header = authorization.next().map(|(_, v)| v.as_str());
    if authorization.next().is_some() {
        return Err(incomplete("Only one Authorization header may be specified.".to_owned()));
    }
    let presigned = query_params(query).any(|(k, _)| k == "X-Amz-Algorithm");
    match (header, presigned) {
        (None, false) => Err(SigV4Error::Missing),
        (Some(_), true) => Err(incomplete(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string \
             parameter or the Authorization header should be specified"
                .to_owned(),
        )),
        (Some(value), false) => from_header(value, headers),
        (None, true) => from_query(query),
    }
}

fn from_header(value: &str, headers: &[(String, String)]) -> Result<AuthInput, SigV4Error> {
    let parsed = parse_authorization_header(value)?;
    let mut dates = headers.iter().filter(|(n, _)| n.trim().eq_ignore_ascii_case("x-amz-date")).map(|(_, v)| v.trim());
    let amz_date = dates.next();
    if dates.next().is_some() {
        return Err(incomplete("Only one 'X-Amz-Date' header may be specified.".to_owned()));
    }

    let (Some(credential), Some(signed_headers), Some(signature), Some(amz_date)) =
        (parsed.credential, parsed.signed_headers, parsed.signature, amz_date)
    else {
        let mut reason = String::new();
        for (present, text) in [
            (parsed.credential.is_some(), "Authorization header requires 'Credential' parameter. "),
            (parsed.signature.is_some(), "Authorization header requires 'Signature' parameter. "),
            (parsed.signed_headers.is_some(), "Authorization header requires 'SignedHeaders' parameter. "),
            (
                amz_date.is_some(),
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ",
            ),
        ] {
            if !present {
                reason.push_str(text);
            }
        }
        reason.push_str("Authorization=");
        reason.push_str(value.trim());
        return Err(incomplete(reason));
    };
    if parsed.algorithm != ALGORITHM {
        return Err(incomplete(format!("Unsupported AWS 'algorithm': '{}'.", parsed.algorithm)));
    }
    checked(credential, signed_headers, signature, amz_date, None)
}

fn from_query(query: &str) -> Result<AuthInput, SigV4Error> {
    let one = |name: &str| -> Result<Option<String>, SigV4Error> {
        let mut values = query_params(query).filter(|(k, _)| k == name).map(|(_, v)| v);
        let first = values.next();
        if values.next().is_some() {
            return Err(incomplete(format!("Query-string authentication parameter '{name}' is repeated.")));
        }
        Ok(first)
    };
    let (Some(algorithm), Some(credential), Some(signature), Some(amz_date), Some(signed_headers), Some(expires)) = (
        one("X-Amz-Algorithm")?,
        one("X-Amz-Credential")?,
        one("X-Amz-Signature")?,
        one("X-Amz-Date")?,
        one("X-Amz-SignedHeaders")?,
        one("X-Amz-Expires")?,
    ) else {
        return Err(incomplete(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, \
             X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."
                .to_owned(),
        ));
    };
    if algorithm != ALGORITHM {
        return Err(incomplete(format!("X-Amz-Algorithm only supports \"{ALGORITHM}\", not '{algorithm}'.")));
    }
    let expires_secs = match expires.parse::<i64>() {
        Ok(secs) if expires.bytes().all(|b| b.is_ascii_digit()) => secs,
        _ => return Err(incomplete(format!("X-Amz-Expires should be a number, not '{expires}'."))),
    };
    if expires_secs > MAX_PRESIGNED_EXPIRES_SECS {
        return Err(incomplete(format!(
            "X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGNED_EXPIRES_SECS}"
        )));
    }
    checked(&credential, &signed_headers, &signature, &amz_date, Some(expires_secs))
}

/// Checks what both carriers share: the credential scope, the date, and the signed-header list.
fn checked(
    credential: &str,
    signed_headers: &str,
    signature: &str,
    amz_date: &str,
    presigned_expires_secs: Option<i64>,
) -> Result<AuthInput, SigV4Error> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key_id, scope_date, region, service, terminator] = parts.as_slice() else {
        return Err(incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got \
             '{credential}'"
        )));
    };
    if access_key_id.is_empty() {
        return Err(incomplete("Credential must name an access key id.".to_owned()));
    }
    if *terminator != TERMINATOR {
        return Err(incomplete(format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{terminator}'."
        )));
    }
    if region.is_empty() {
        return Err(incomplete("Credential should be scoped to a valid region, not ''. ".to_owned()));
    }
    if service.is_empty() {
        return Err(incomplete("Credential should be scoped to correct service, not ''. ".to_owned()));
    }
    let Some(signed_at) = parse_amz_date(amz_date) else {
        return Err(incomplete(format!(
            "Date must be in ISO-8601 'basic format'. Got '{amz_date}'. See http://en.wikipedia.org/wiki/ISO_8601"
        )));
    };
    // The scope date must be the X-Amz-Date's day; a client cannot reuse one day's signing key on another.
    if !amz_date.starts_with(scope_date) || scope_date.len() != 8 {
        return Err(incomplete(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: \
             '{scope_date}' != '{}', from '{amz_date}'.",
            amz_date.get(..8).unwrap_or(amz_date)
        )));
    }
    let names: Vec<String> = signed_headers.split(';').map(|n| n.trim().to_ascii_lowercase()).collect();
    if names.iter().any(String::is_empty) {
        return Err(incomplete(format!(
            "SignedHeaders must be a ';'-separated list of header names, got '{signed_headers}'."
        )));
    }
    if !names.iter().any(|n| n == "host") {
        return Err(incomplete("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".to_owned()));
    }
    Ok(AuthInput {
        access_key_id: (*access_key_id).to_owned(),
        scope_date: (*scope_date).to_owned(),
        region: (*region).to_owned(),
        service: (*service).to_owned(),
        signed_headers: names,
        signature: signature.to_owned(),
        amz_date: amz_date.to_owned(),
        signed_at,
        presigned_expires_secs,
    })
}

/// Query parameters with names and values percent-decoded (lossy UTF-8: a bad byte can only make a check fail).
fn query_params(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (
            String::from_utf8_lossy(&percent_decode(k)).into_owned(),
            String::from_utf8_lossy(&percent_decode(v)).into_owned(),
        )
    })
}

fn incomplete(reason: String) -> SigV4Error {
    SigV4Error::Incomplete { reason }
}

/// Standard base64 with padding, only for the hashed echo in one error message.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 0x3f) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn botocore_header_parses() {
        let h = "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/service/aws4_request, \
                 SignedHeaders=host;x-amz-date, Signature=5fa0";
        assert_eq!(
            parse_authorization_header(h),
            Ok(AuthorizationHeader {
                algorithm: ALGORITHM,
                credential: Some("AKID/20150830/us-east-1/service/aws4_request"),
                signed_headers: Some("host;x-amz-date"),
                signature: Some("5fa0"),
            })
        );
    }

    #[test]
    fn spacing_variants_and_unknown_params_are_accepted() {
        let h = "  AWS4-HMAC-SHA256   Credential = A/B ,SignedHeaders=host,,Foo=bar,Signature=ab  ";
        let parsed = parse_authorization_header(h);
        assert!(matches!(
            parsed,
            Ok(AuthorizationHeader {
                credential: Some("A/B"),
                signed_headers: Some("host"),
                signature: Some("ab"),
                ..
            })
        ));
    }

    #[test]
    fn missing_equal_sign_is_reported_hashed() {
        let err = parse_authorization_header("AWS4-HMAC-SHA256 Credential").map(|_| ());
        assert!(
            matches!(&err, Err(SigV4Error::Incomplete { reason }) if reason.contains("missing equal-sign") && !reason.contains("'Credential'")),
            "{err:?}"
        );
    }

    #[test]
    fn repeated_param_is_rejected() {
        let err = parse_authorization_header("AWS4-HMAC-SHA256 Signature=a, Signature=b");
        assert!(matches!(err, Err(SigV4Error::Incomplete { .. })), "{err:?}");
    }

    #[test]
    fn base64_matches_rfc4648_examples() {
        for (input, want) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foobar", "Zm9vYmFy")] {
            assert_eq!(base64(input.as_bytes()), want);
        }
    }
}
