//! The journal's integration tests, one binary: behaviour, crash consistency, dictionaries, injected faults
//! and the model test.

mod behaviour;
mod crash;
mod dictionary;
mod faults;
mod model;
mod support;
