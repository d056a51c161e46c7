//! KV version 2 helpers: read/write/patch/list, soft delete/undelete/destroy of versions,
//! and the metadata endpoints, all relative to a mount (default `secret`).

use std::collections::BTreeMap;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::error::ClientError;
use crate::types::{null_default, zeroize_value, Secret, Ttl};
use crate::{join_path, list_method, optional_secret, required_secret, Client, MERGE_PATCH_JSON};

/// Mount used when none is given.
pub const DEFAULT_KV_MOUNT: &str = "secret";

/// The API path of a KV v2 endpoint: `kv_api_path("secret", "data", "a/b")` is
/// `secret/data/a/b`.
pub fn kv_api_path(mount: &str, endpoint: &str, path: &str) -> String {
    join_path(&[mount, endpoint, path])
}

/// Metadata of one version, as found in `data.metadata` of a read and in `data` of a write.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct KvVersionMetadata {
    /// RFC 3339 creation time.
    #[serde(default, deserialize_with = "null_default")]
    pub created_time: String,
    /// Custom metadata of the secret (`null` when none).
    #[serde(default)]
    pub custom_metadata: Option<Map<String, Value>>,
    /// RFC 3339 deletion time, empty when not deleted.
    #[serde(default, deserialize_with = "null_default")]
    pub deletion_time: String,
    /// Whether this version was destroyed.
    #[serde(default, deserialize_with = "null_default")]
    pub destroyed: bool,
    /// Version number.
    #[serde(default, deserialize_with = "null_default")]
    pub version: u64,
}

/// One version of a KV secret. `data` is `None` when the version is deleted or destroyed.
#[derive(Debug, Clone)]
pub struct KvSecret {
    /// The secret's key/value pairs.
    pub data: Option<Map<String, Value>>,
    /// The version's metadata.
    pub metadata: KvVersionMetadata,
    /// The full envelope, for `-format=json` output and fields not modelled here.
    pub secret: Secret,
}

impl KvSecret {
    /// The version was soft-deleted (and not destroyed).
    pub fn is_deleted(&self) -> bool {
        !self.metadata.destroyed && !self.metadata.deletion_time.is_empty()
    }

    /// The version was destroyed.
    pub fn is_destroyed(&self) -> bool {
        self.metadata.destroyed
    }

    /// The full JSON answer as the server sent it.
    pub fn raw(&self) -> &Value {
        self.secret.raw()
    }

    fn from_secret(secret: Secret) -> Result<KvSecret, ClientError> {
        let inner = secret
            .data
            .as_ref()
            .ok_or_else(|| ClientError::Decode("KV answer without data".into()))?;
        let metadata = match inner.get("metadata") {
            Some(m) if !m.is_null() => serde_json::from_value(m.clone())
                .map_err(|e| ClientError::Decode(format!("bad KV metadata: {e}")))?,
            _ => KvVersionMetadata::default(),
        };
        let data = match inner.get("data") {
            Some(Value::Object(map)) => Some(map.clone()),
            _ => None,
        };
        Ok(KvSecret {
            data,
            metadata,
            secret,
        })
    }
}

impl Drop for KvSecret {
    fn drop(&mut self) {
        if let Some(data) = self.data.as_mut() {
            data.values_mut().for_each(zeroize_value);
        }
    }
}

/// Body of `POST M/metadata/P`; unset fields are not sent.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct KvMetadataUpdate {
    /// Versions to keep (0 = mount default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_versions: Option<u64>,
    /// Require `cas` on every write.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cas_required: Option<bool>,
    /// Soft-delete versions this long after they are written (`"0s"` = never).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_version_after: Option<Ttl>,
    /// Custom key/value metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_metadata: Option<BTreeMap<String, String>>,
}

fn require_path(path: &str) -> Result<(), ClientError> {
    if path.trim_matches('/').is_empty() {
        Err(ClientError::InvalidPath(
            "a KV secret path is required".into(),
        ))
    } else {
        Ok(())
    }
}

fn require_versions(versions: &[u64]) -> Result<(), ClientError> {
    if versions.is_empty() {
        Err(ClientError::InvalidPath(
            "at least one version is required".into(),
        ))
    } else {
        Ok(())
    }
}

fn write_body(data: &Value, cas: Option<u64>) -> Value {
    let mut body = json!({ "data": data });
    if let (Some(cas), Some(obj)) = (cas, body.as_object_mut()) {
        obj.insert("options".into(), json!({ "cas": cas }));
    }
    body
}

impl Client {
    /// Read the latest (or a given) version. `Ok(None)` when there is no secret at the path;
    /// a deleted/destroyed version is returned with `data: None` (see
    /// [`KvSecret::is_deleted`], [`KvSecret::is_destroyed`]).
    pub async fn kv_get(
        &self,
        mount: &str,
        path: &str,
        version: Option<u64>,
    ) -> Result<Option<KvSecret>, ClientError> {
        require_path(path)?;
        let version = version.map(|v| v.to_string());
        let query: Vec<(&str, &str)> = version.iter().map(|v| ("version", v.as_str())).collect();
        let resp = self
            .request(
                Method::GET,
                &kv_api_path(mount, "data", path),
                &query,
                None,
                &[],
            )
            .await?;
        optional_secret(resp)?
            .map(KvSecret::from_secret)
            .transpose()
    }

    /// Write a new version (`data` must be a JSON object). `cas`: only write if the current
    /// version is this (0 = only if the secret does not exist). Answer `data` is the new
    /// version's metadata.
    pub async fn kv_put(
        &self,
        mount: &str,
        path: &str,
        data: &Value,
        cas: Option<u64>,
    ) -> Result<Secret, ClientError> {
        self.kv_write(Method::POST, &[], mount, path, data, cas)
            .await
    }

    /// Merge `data` into the latest version (JSON merge patch; `null` removes a key).
    pub async fn kv_patch(
        &self,
        mount: &str,
        path: &str,
        data: &Value,
        cas: Option<u64>,
    ) -> Result<Secret, ClientError> {
        self.kv_write(
            Method::PATCH,
            &[("Content-Type", MERGE_PATCH_JSON)],
            mount,
            path,
            data,
            cas,
        )
        .await
    }

    /// Sends a write of `data` to `data/<path>`; the body (holding the secret) is
    /// wiped afterwards whatever the outcome.
    async fn kv_write(
        &self,
        method: Method,
        headers: &[(&str, &str)],
        mount: &str,
        path: &str,
        data: &Value,
        cas: Option<u64>,
    ) -> Result<Secret, ClientError> {
        require_path(path)?;
        let mut body = write_body(data, cas);
        let resp = self
            .request(
                method,
                &kv_api_path(mount, "data", path),
                &[],
                Some(&body),
                headers,
            )
            .await;
        zeroize_value(&mut body);
        required_secret(resp?)
    }

    /// Keys under a folder (`path` may be empty for the mount root); folders end in `/`.
    /// Empty when nothing is there.
    pub async fn kv_list(&self, mount: &str, path: &str) -> Result<Vec<String>, ClientError> {
        let resp = self
            .request(
                list_method()?,
                &kv_api_path(mount, "metadata", path),
                &[],
                None,
                &[],
            )
            .await?;
        let Some(secret) = optional_secret(resp)? else {
            return Ok(Vec::new());
        };
        match secret.data_field("keys") {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(keys) => serde_json::from_value(keys.clone())
                .map_err(|e| ClientError::Decode(format!("bad key list: {e}"))),
        }
    }

    /// Soft-delete: with no `versions`, the latest version (`DELETE M/data/P`);
    /// otherwise the given versions (`POST M/delete/P`).
    pub async fn kv_delete(
        &self,
        mount: &str,
        path: &str,
        versions: &[u64],
    ) -> Result<(), ClientError> {
        require_path(path)?;
        let resp = if versions.is_empty() {
            self.request(
                Method::DELETE,
                &kv_api_path(mount, "data", path),
                &[],
                None,
                &[],
            )
            .await?
        } else {
            self.versions_call(mount, "delete", path, versions).await?
        };
        resp.error_for_status()?;
        Ok(())
    }

    /// Restore soft-deleted versions.
    pub async fn kv_undelete(
        &self,
        mount: &str,
        path: &str,
        versions: &[u64],
    ) -> Result<(), ClientError> {
        require_path(path)?;
        require_versions(versions)?;
        self.versions_call(mount, "undelete", path, versions)
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// Permanently remove the data of the given versions.
    pub async fn kv_destroy(
        &self,
        mount: &str,
        path: &str,
        versions: &[u64],
    ) -> Result<(), ClientError> {
        require_path(path)?;
        require_versions(versions)?;
        self.versions_call(mount, "destroy", path, versions)
            .await?
            .error_for_status()?;
        Ok(())
    }

    async fn versions_call(
        &self,
        mount: &str,
        endpoint: &str,
        path: &str,
        versions: &[u64],
    ) -> Result<crate::Response, ClientError> {
        let body = json!({ "versions": versions });
        self.request(
            Method::POST,
            &kv_api_path(mount, endpoint, path),
            &[],
            Some(&body),
            &[],
        )
        .await
    }

    /// `GET M/metadata/P`: all versions and settings. `Ok(None)` when there is no secret.
    pub async fn kv_metadata_get(
        &self,
        mount: &str,
        path: &str,
    ) -> Result<Option<Secret>, ClientError> {
        require_path(path)?;
        let resp = self
            .request(
                Method::GET,
                &kv_api_path(mount, "metadata", path),
                &[],
                None,
                &[],
            )
            .await?;
        optional_secret(resp)
    }

    /// `POST M/metadata/P` with settings (e.g. a [`KvMetadataUpdate`] or any JSON object).
    pub async fn kv_metadata_put<B: Serialize + ?Sized>(
        &self,
        mount: &str,
        path: &str,
        body: &B,
    ) -> Result<(), ClientError> {
        require_path(path)?;
        let body = serde_json::to_value(body)
            .map_err(|e| ClientError::Decode(format!("cannot encode request body: {e}")))?;
        self.request(
            Method::POST,
            &kv_api_path(mount, "metadata", path),
            &[],
            Some(&body),
            &[],
        )
        .await?
        .error_for_status()?;
        Ok(())
    }

    /// `DELETE M/metadata/P`: remove the secret with all its versions and metadata.
    pub async fn kv_metadata_delete(&self, mount: &str, path: &str) -> Result<(), ClientError> {
        require_path(path)?;
        self.request(
            Method::DELETE,
            &kv_api_path(mount, "metadata", path),
            &[],
            None,
            &[],
        )
        .await?
        .error_for_status()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths() {
        assert_eq!(kv_api_path("secret", "data", "a/b"), "secret/data/a/b");
        assert_eq!(kv_api_path("kv/", "metadata", ""), "kv/metadata");
        assert_eq!(kv_api_path("secret", "delete", "/x/"), "secret/delete/x");
    }

    #[test]
    fn write_body_adds_cas_only_when_given() {
        let d = json!({"k": "v"});
        assert_eq!(write_body(&d, None), json!({"data": {"k": "v"}}));
        assert_eq!(
            write_body(&d, Some(0)),
            json!({"data": {"k": "v"}, "options": {"cas": 0}})
        );
    }

    #[test]
    fn deleted_and_destroyed_versions() {
        let env = |meta: Value| {
            Secret::from_value(json!({"data": {"data": null, "metadata": meta}})).unwrap()
        };
        let deleted = KvSecret::from_secret(env(json!({
            "created_time": "t0", "deletion_time": "t1", "destroyed": false, "version": 2
        })))
        .unwrap();
        assert!(deleted.is_deleted() && !deleted.is_destroyed());
        assert!(deleted.data.is_none());
        let destroyed = KvSecret::from_secret(env(json!({
            "created_time": "t0", "deletion_time": "", "destroyed": true, "version": 3
        })))
        .unwrap();
        assert!(destroyed.is_destroyed() && !destroyed.is_deleted());
        let live = KvSecret::from_secret(
            Secret::from_value(json!({"data": {"data": {"a": "1"}, "metadata": {"version": 1}}}))
                .unwrap(),
        )
        .unwrap();
        assert!(!live.is_deleted() && !live.is_destroyed());
        assert_eq!(live.data.as_ref().unwrap()["a"], "1");
    }

    #[test]
    fn metadata_update_skips_unset_fields() {
        let u = KvMetadataUpdate {
            max_versions: Some(3),
            delete_version_after: Some(Ttl::parse("1h")),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&u).unwrap(),
            json!({"max_versions": 3, "delete_version_after": "1h"})
        );
    }
}
