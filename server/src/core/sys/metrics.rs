//! `sys/metrics?format=prometheus` (with a token, or without one on a listener
//! that allows it).

use super::{Family, SysFuture, SysRequest};
use crate::core::{Core, CoreError};
use crate::engine::{Ops, PathSpec};
use crate::logical::{Fields, LogicalError, Request, Response};

static PATHS: &[PathSpec] = &[PathSpec::new("sys/metrics", Ops::READ)];

pub(super) static FAMILY: Family = Family {
    paths: PATHS,
    handle,
};

fn handle(r: SysRequest<'_>) -> SysFuture<'_> {
    Box::pin(metrics(r.core, r.req))
}

/// `sys/metrics?format=prometheus`.
async fn metrics(core: &Core, req: &Request) -> Result<Response, CoreError> {
    match Fields(&req.data).string("format")?.as_deref() {
        Some("prometheus") => Ok(Response {
            lease: None,
            status: 200,
            body: crate::logical::ResponseBody::Text(core.metrics_text().await),
            mount_type: None,
            legacy_top_level: false,
        }),
        _ => Err(LogicalError::invalid("only format=prometheus is supported").into()),
    }
}
