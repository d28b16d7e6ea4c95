//! The index's integration tests, one binary: behaviour as callers see it, the property test against the
//! linear filter, and segments read on demand.

mod index_behaviour;
mod lookup_matches_linear_filter;
mod paged_segments;
