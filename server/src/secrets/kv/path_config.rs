//! `config`: mount-wide max_versions, cas_required and delete_version_after.

use serde_json::json;

use super::model::KvConfig;
use crate::barrier::View;
use crate::logical::{format_duration, Fields, LogicalError, Operation, Request, Response};

pub(super) async fn handle(view: &View, req: &Request) -> Result<Response, LogicalError> {
    match req.operation {
        Operation::Read => {
            let c = KvConfig::load(view).await?;
            Ok(Response::data(json!({
                "cas_required": c.cas_required,
                "delete_version_after": format_duration(c.delete_version_after),
                "max_versions": c.max_versions,
            })))
        }
        op if op.is_write() => {
            let f = Fields(&req.data);
            let mut c = KvConfig::load(view).await?;
            if let Some(v) = f.u64("max_versions")? {
                c.max_versions = v;
            }
            if let Some(v) = f.bool("cas_required")? {
                c.cas_required = v;
            }
            if let Some(v) = f.duration("delete_version_after")? {
                c.delete_version_after = v;
            }
            let raw = serde_json::to_vec(&c).map_err(|_| LogicalError::Corrupt)?;
            view.apply(vec![view.put_op("config", raw, None)]).await?;
            Ok(Response::no_content())
        }
        _ => Err(LogicalError::UnsupportedOperation),
    }
}
