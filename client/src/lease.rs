//! Leases: `sys/leases/renew` and `sys/leases/revoke` with the `lease_id` in the body
//! (Vault's form; lease ids never go into a URL).

use serde_json::json;

use crate::error::ClientError;
use crate::{required_secret, Client, Method, Ttl};

/// What a renewal answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRenewal {
    /// The lease id (as the server echoes it).
    pub lease_id: String,
    /// Seconds the lease now lives; less than asked when it reached its max TTL.
    pub lease_duration: i64,
    /// Whether it can be renewed again.
    pub renewable: bool,
}

impl Client {
    /// `PUT sys/leases/renew {"lease_id", "increment"?}`.
    pub async fn lease_renew(
        &self,
        lease_id: &str,
        increment: Option<Ttl>,
    ) -> Result<LeaseRenewal, ClientError> {
        let mut body = json!({ "lease_id": lease_id });
        if let (Some(inc), Some(obj)) = (increment, body.as_object_mut()) {
            obj.insert("increment".into(), json!(inc));
        }
        let secret = required_secret(
            self.request(Method::PUT, "sys/leases/renew", &[], Some(&body), &[])
                .await?,
        )?;
        Ok(LeaseRenewal {
            lease_id: if secret.lease_id.is_empty() {
                lease_id.to_string()
            } else {
                secret.lease_id.clone()
            },
            lease_duration: secret.lease_duration,
            renewable: secret.renewable,
        })
    }

    /// `PUT sys/leases/revoke {"lease_id"}`: end the lease (and what it stands for) now.
    pub async fn lease_revoke(&self, lease_id: &str) -> Result<(), ClientError> {
        let body = json!({ "lease_id": lease_id });
        self.request(Method::PUT, "sys/leases/revoke", &[], Some(&body), &[])
            .await?
            .error_for_status()?;
        Ok(())
    }
}
