//! Signatures cross-checked with an independent RSA implementation (RustCrypto `rsa`): PKCS#1 v1.5 is
//! deterministic, so the same key must give byte-identical signatures; and property tests of digests and
//! their chains.

use std::sync::OnceLock;

use integrity::digest::{ChainLink, Digest, DigestInput, LogFileEntry, data_to_sign, verify};
use integrity::keys::{SigningKey, verify_sha256_rsa};
use model::EventTime;
use proptest::prelude::*;
use rsa::pkcs1::{DecodeRsaPublicKey, EncodeRsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rsa::sha2::Sha256;
use rsa::signature::{SignatureEncoding, Signer, Verifier};

fn key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate().unwrap())
}

#[test]
fn aws_lc_and_rustcrypto_sign_byte_identically_with_an_aws_lc_key() {
    let ours = key();
    let theirs = rsa::RsaPrivateKey::from_pkcs8_der(&ours.to_pkcs8().unwrap()).unwrap();
    // The published PKCS#1 public key is the same key.
    assert_eq!(theirs.to_public_key().to_pkcs1_der().unwrap().as_bytes(), ours.public_key_pkcs1_der());
    let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new(theirs);
    for data in [&b""[..], b"2026-11-25T01:00:00Z\nb/k\nab\nnull", &[0xffu8; 5000][..]] {
        let sig = ours.sign_sha256_rsa(data).unwrap();
        assert_eq!(signer.sign(data).to_vec(), sig);
        let public = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(
            rsa::RsaPublicKey::from_pkcs1_der(ours.public_key_pkcs1_der()).unwrap(),
        );
        public.verify(data, &rsa::pkcs1v15::Signature::try_from(sig.as_slice()).unwrap()).unwrap();
    }
}

#[test]
fn a_rustcrypto_key_loads_and_signs_byte_identically() {
    let theirs = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let der = theirs.to_pkcs8_der().unwrap();
    let ours = SigningKey::from_pkcs8(der.as_bytes()).unwrap();
    let data = b"digest data to sign";
    let theirs_sig = rsa::pkcs1v15::SigningKey::<Sha256>::new(theirs).sign(data).to_vec();
    assert_eq!(ours.sign_sha256_rsa(data).unwrap(), theirs_sig);
    assert!(verify_sha256_rsa(ours.public_key_pkcs1_der(), data, &theirs_sig));
}

fn arb_entry() -> impl Strategy<Value = LogFileEntry> {
    ("[a-z0-9.-]{3,20}", "[ -~]{1,60}", "[0-9a-f]{64}", proptest::option::of(0i64..4_000_000_000), 0i64..100_000)
        .prop_map(|(bucket, key, hash, newest, span)| LogFileEntry {
            s3_bucket: bucket,
            s3_object: key,
            hash_value: hash,
            hash_algorithm: "SHA-256".into(),
            newest_event_time: newest.map(|s| integrity::time::iso_seconds(EventTime(s * 1000))),
            oldest_event_time: newest.map(|s| integrity::time::iso_seconds(EventTime((s - span) * 1000))),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn digests_round_trip_byte_for_byte_and_verify(
        account in "[0-9]{12}",
        start in 0i64..4_000_000_000,
        len in 1i64..7200,
        bucket in "[a-z0-9.-]{3,30}",
        key_name in "[ -~]{1,80}",
        files in proptest::collection::vec(arb_entry(), 0..6),
        previous in proptest::option::of(("[a-z0-9.-]{3,20}", "[ -~]{1,40}", "[0-9a-f]{64}", "[0-9a-f]{512}")),
    ) {
        let link = previous.map(|(b, k, h, s)| ChainLink { bucket: b, key: k, hash_hex: h, signature_hex: s });
        let digest = Digest::new(DigestInput {
            account: &account,
            start: EventTime(start * 1000),
            end: EventTime((start + len) * 1000),
            bucket: &bucket,
            key: &key_name,
            fingerprint: key().fingerprint(),
            log_files: files,
            previous: link.as_ref(),
        });
        let signed = digest.sign(key()).unwrap();
        let parsed: Digest = serde_json::from_slice(&signed.json).unwrap();
        prop_assert_eq!(&parsed, &digest);
        prop_assert_eq!(parsed.to_json(), signed.json.clone());
        prop_assert_eq!(integrity::digest::gunzip(&signed.gzip, 1 << 20).unwrap(), signed.json.clone());
        prop_assert!(verify(&signed.json, &parsed, &signed.signature_hex, key().public_key_pkcs1_der()));
        // Every key is present even when null.
        let value: serde_json::Value = serde_json::from_slice(&signed.json).unwrap();
        prop_assert_eq!(value.as_object().unwrap().len(), 15);
        // The signature covers the data-to-sign string, which names the previous signature or `null`.
        let data = data_to_sign(&parsed.digest_end_time, &bucket, &key_name, &signed.sha256_hex, link.as_ref().map(|l| l.signature_hex.as_str()));
        prop_assert!(verify_sha256_rsa(key().public_key_pkcs1_der(), data.as_bytes(), &hex::decode(&signed.signature_hex).unwrap()));
    }

    #[test]
    fn any_changed_byte_of_a_digest_breaks_its_signature(at in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let digest = Digest::new(DigestInput {
            account: "123456789012", start: EventTime(0), end: EventTime(3_600_000), bucket: "b", key: "k",
            fingerprint: key().fingerprint(), log_files: vec![], previous: None,
        });
        let signed = digest.sign(key()).unwrap();
        let mut json = signed.json.clone();
        let i = at.index(json.len());
        json[i] ^= flip;
        // Whether or not the changed bytes still parse, the signature no longer matches them.
        let parsed: Digest = serde_json::from_slice(&json).unwrap_or(digest.clone());
        prop_assert!(!verify(&json, &parsed, &signed.signature_hex, key().public_key_pkcs1_der()));
    }

    #[test]
    fn a_chain_links_each_digest_to_the_exact_bytes_and_signature_before_it(n in 1usize..6, gaps in proptest::collection::vec(any::<bool>(), 6)) {
        let mut link: Option<ChainLink> = None;
        let mut chain = Vec::new();
        for (i, &gap) in gaps.iter().enumerate().take(n) {
            // A gap restarts the chain (logging stopped and started again).
            if gap {
                link = None;
            }
            let key_name = format!("d{i}");
            let digest = Digest::new(DigestInput {
                account: "123456789012", start: EventTime(i as i64 * 3_600_000), end: EventTime((i as i64 + 1) * 3_600_000),
                bucket: "b", key: &key_name, fingerprint: key().fingerprint(), log_files: vec![], previous: link.as_ref(),
            });
            let signed = digest.sign(key()).unwrap();
            link = Some(signed.link("b", &key_name));
            chain.push((digest, signed));
        }
        for i in 1..n {
            let (newer, _) = &chain[i];
            let (_, older) = &chain[i - 1];
            if gaps[i] {
                prop_assert_eq!(newer.previous_digest_s3_object.as_deref(), None);
                prop_assert_eq!(newer.previous_digest_signature.as_deref(), None);
            } else {
                prop_assert_eq!(newer.previous_digest_s3_object.clone(), Some(format!("d{}", i - 1)));
                prop_assert_eq!(newer.previous_digest_hash_value.clone(), Some(integrity::sha256_hex(&older.json)));
                prop_assert_eq!(newer.previous_digest_signature.clone(), Some(older.signature_hex.clone()));
                prop_assert_eq!(newer.previous_digest_hash_algorithm.as_deref(), Some("SHA-256"));
            }
        }
    }
}
