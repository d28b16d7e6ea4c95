//! opentrail's black-box suite, one binary: the real binary on port 0 with its own data dir and config,
//! driven by its own CLI, by signed HTTP, by the aws CLI v1 and by boto3.

mod api_policies;
mod audit;
mod cli;
mod console;
mod core;
mod crash;
mod data_plane;
mod delivered;
mod delivery;
mod delivery_crash;
mod delivery_s3;
mod front_door;
mod gateway;
mod gateway_aws;
mod import;
mod insights;
mod lake;
mod lookup_events;
mod richer_lookups;
mod s3_api;
mod sdk_js;
mod signatures;
mod support;
mod trails;
mod validate;
