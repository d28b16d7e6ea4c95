//! The validator's storage: `integrity::validate::ObjectSource` over `buckets::Bucket`, the one storage
//! client (a local bucket folder offline, the server's S3 read API or S3 itself online).

use std::collections::HashMap;
use std::sync::Mutex;

use buckets::{Bucket, BucketError, BucketTarget, S3Target};
use integrity::validate::{Object, ObjectSource, SourceError};

/// The trail's bucket, and — online — any other bucket a digest's chain link names, opened on the same S3
/// endpoint with the same credentials (once each, then reused).
pub struct BucketSource {
    primary: Bucket,
    /// How other buckets are reached; `None` offline (a folder is one bucket).
    s3: Option<S3Target>,
    others: Mutex<HashMap<String, Bucket>>,
}

impl BucketSource {
    pub fn new(primary: Bucket, s3: Option<S3Target>) -> BucketSource {
        BucketSource { primary, s3, others: Mutex::new(HashMap::new()) }
    }

    fn bucket(&self, name: &str) -> Result<Bucket, SourceError> {
        if name == self.primary.name() {
            return Ok(self.primary.clone());
        }
        let Some(target) = &self.s3 else {
            return Err(SourceError {
                message: format!(
                    "bucket {name} is not available offline (only --bucket-dir, bucket {})",
                    self.primary.name()
                ),
            });
        };
        let mut others = self.others.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = others.get(name) {
            return Ok(b.clone());
        }
        let b = Bucket::open(name, &BucketTarget::S3(target.clone())).map_err(source_error)?;
        others.insert(name.to_string(), b.clone());
        Ok(b)
    }
}

fn source_error(e: BucketError) -> SourceError {
    SourceError { message: e.to_string() }
}

impl ObjectSource for BucketSource {
    async fn list(&self, bucket: &str, prefix: &str, start_after: Option<&str>) -> Result<Vec<String>, SourceError> {
        let b = self.bucket(bucket)?;
        let listed = b.list(Some(prefix), start_after, usize::MAX).await.map_err(source_error)?;
        Ok(listed.into_iter().map(|o| o.key).collect())
    }

    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Object>, SourceError> {
        let b = self.bucket(bucket)?;
        match b.get(key, None).await {
            // `Vec::from(Bytes)` takes the buffer over without a copy when it is not shared.
            Ok(o) => Ok(Some(Object { bytes: Vec::from(o.body), metadata: o.info.metadata })),
            Err(BucketError::NotFound { .. }) => Ok(None),
            Err(e) => Err(source_error(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_folder_lists_and_reads_with_metadata_and_missing_keys_are_none() {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let b = Bucket::open("logs", &BucketTarget::Local { root: dir.path().to_path_buf() }).unwrap();
            b.put_once("a/1.json.gz", bytes::Bytes::from_static(b"one"), &[("signature", "abc")]).await.unwrap();
            b.put_once("a/2.json.gz", bytes::Bytes::from_static(b"two"), &[]).await.unwrap();
            let src = BucketSource::new(b, None);
            assert_eq!(src.list("logs", "a/", None).await.unwrap(), vec!["a/1.json.gz", "a/2.json.gz"]);
            assert_eq!(src.list("logs", "a/", Some("a/1.json.gz")).await.unwrap(), vec!["a/2.json.gz"]);
            let o = src.get("logs", "a/1.json.gz").await.unwrap().unwrap();
            assert_eq!(o.bytes, b"one");
            assert_eq!(o.metadata.get("signature").map(String::as_str), Some("abc"));
            assert_eq!(src.get("logs", "a/3.json.gz").await.unwrap(), None);
            let err = src.get("other", "a/1.json.gz").await.unwrap_err();
            assert!(err.message.contains("other"), "{}", err.message);
        });
    }
}
