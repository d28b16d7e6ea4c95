//! opentrail's web console, without HTTP: the embedded assets (`assets.rs`), the server-side session table
//! (`session.rs`) and the sign-in checks (`signin.rs`: secrets compared in constant time, console users'
//! argon2 password hashes). `crates/api` serves it on the API's listener and runs every data call of the
//! console through the API's one operation chain (docs/console.md).
//!
//! Architecture invariant: this crate knows nothing of HTTP, the store or the chain; it holds bytes, ids
//! and decisions.

pub mod assets;
pub mod session;
pub mod signin;

pub use assets::{Asset, asset, index_html};
pub use session::{Session, SessionError, Sessions};
pub use signin::{PasswordError, check_phc, constant_time_eq, hash_password, verify_password};
