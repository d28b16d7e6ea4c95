//! ListPublicKeys' request shape and the time range it asks for.

use model::EventTime;
use serde::Deserialize;

use super::{Timestamp, WireError};

/// ListPublicKeys (`NextToken` is not read: one page holds every key).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListPublicKeysRequest {
    start_time: Option<Timestamp>,
    end_time: Option<Timestamp>,
}

impl ListPublicKeysRequest {
    /// The range the keys' validity must overlap; either bound left out means `now` (AWS: without
    /// times, the current key).
    pub fn range(self, now: EventTime) -> Result<(EventTime, EventTime), WireError> {
        let start = self.start_time.map_or(now, |t| t.0);
        let end = self.end_time.map_or(now, |t| t.0);
        if start > end {
            return Err(WireError::TimeRange { start, end });
        }
        Ok((start, end))
    }
}
