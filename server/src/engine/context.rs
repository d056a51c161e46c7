//! What an engine is given for one request: its mount, its confined storage,
//! the path below the mount, the time, who is calling and over what connection.

use crate::barrier::View;
use crate::clock::UnixTime;
use crate::mounts::MountEntry;

pub use crate::logical::ConnectionInfo;
pub use crate::token::paths::Caller;

/// One request's view of the mount that serves it.
pub struct MountContext<'a> {
    /// the mount table entry (path, accessor, options, tunables)
    pub mount: &'a MountEntry,
    /// the mount's storage, confined to its prefix
    pub view: &'a View,
    /// the canonical path below the mount
    pub rest: &'a str,
    /// when the request is served
    pub now: UnixTime,
    /// the authenticated caller (`None` on login steps)
    pub caller: Option<&'a Caller<'a>>,
    /// the client's address and verified certificate chain
    pub connection: &'a ConnectionInfo,
    /// storage owned by the caller's token, removed when the token is revoked
    /// (only for engines that ask for it, and only with a caller)
    pub token_view: Option<View>,
}
