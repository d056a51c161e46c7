//! `sys/breakglass/*`: asking for, approving, fetching and ending emergency
//! access (the grants themselves and their state machine live in
//! `crate::breakglass`). Who may do what is decided here, on top of the
//! policy check every request passes:
//! - only people ask and approve: the token must come from a login that
//!   passed its second factor (`mfa=true` from `auth/userpass`), and must not
//!   itself be a break-glass token;
//! - approving and denying need `update` on `sys/breakglass/approve` (a
//!   capability in policy, held by admins), a fresh TOTP code of the approver
//!   (checked and spent like a login code), and never the requester;
//! - the token is fetched once, by the requester, while every approval still
//!   matches the request as stored.

use serde_json::{json, Value};

use super::{Family, SysFuture, SysRequest};
use crate::barrier::View;
use crate::breakglass::{
    Approval, Change, Config, Decision, EventKind, Grant, Notifications, Person, Status, Store,
};
use crate::clock::UnixTime;
use crate::core::{Core, CoreError, Unsealed};
use crate::crypto::SecretString;
use crate::engine::{MountContext, Ops, PathSpec};
use crate::logical::{Fields, LogicalError, Operation, Response, ResponseBody};
use crate::policy::Capabilities;
use crate::token::{CreateParams, FoundToken};

/// The policy path whose `update` makes a token an approver.
pub(crate) const APPROVE_CAPABILITY_PATH: &str = "sys/breakglass/approve";

static PATHS: &[PathSpec] = &[
    PathSpec::new("sys/breakglass", Ops::LIST),
    PathSpec::new("sys/breakglass/config", Ops::READ.and(Ops::WRITE)),
    PathSpec::new("sys/breakglass/request", Ops::WRITE),
    PathSpec::new("sys/breakglass/:id", Ops::READ),
    PathSpec::new("sys/breakglass/:id/approve", Ops::WRITE),
    PathSpec::new("sys/breakglass/:id/deny", Ops::WRITE),
    PathSpec::new("sys/breakglass/:id/cancel", Ops::WRITE),
    PathSpec::new("sys/breakglass/:id/token", Ops::WRITE),
    PathSpec::new("sys/breakglass/:id/revoke", Ops::WRITE),
    PathSpec::new("sys/breakglass/:id/report", Ops::READ),
];

pub(super) static FAMILY: Family = Family {
    paths: PATHS,
    handle,
};

const NOT_A_PERSON: &str = "break-glass is asked for and approved by people: use a token from a login that passed its second factor (password and TOTP)";
const REASON_MIN: usize = 10;
const TEXT_MAX: usize = 2000;

fn handle(r: SysRequest<'_>) -> SysFuture<'_> {
    Box::pin(async move {
        let state = r.state()?;
        let caller = r.caller()?;
        let rest = r.rest.strip_prefix("breakglass").unwrap_or_default();
        let rest = rest.trim_start_matches('/');
        let bg = Ctx {
            core: r.core,
            state,
            caller,
            data: &r.req.data,
            remote: r.req.connection.remote_addr,
            connection: &r.req.connection,
            now: r.now,
        };
        let op = r.req.operation;
        match (rest, op) {
            ("", Operation::List) => bg.list().await,
            ("config", Operation::Read) => {
                Ok(Response::data(Config::load(&state.barrier).await?.view()))
            }
            ("config", o) if o.is_write() => bg.write_config().await,
            ("request", o) if o.is_write() => bg.request().await,
            _ => {
                let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
                match (action, op) {
                    ("", Operation::Read) => bg.show(id).await,
                    ("approve", o) if o.is_write() => bg.decide(id, true).await,
                    ("deny", o) if o.is_write() => bg.decide(id, false).await,
                    ("cancel", o) if o.is_write() => bg.cancel(id).await,
                    ("token", o) if o.is_write() => bg.fetch_token(id).await,
                    ("revoke", o) if o.is_write() => bg.revoke(id).await,
                    ("report", Operation::Read) => bg.report(id).await,
                    _ => Err(r.no_handler()),
                }
            }
        }
    })
}

struct Ctx<'a> {
    core: &'a Core,
    state: &'a Unsealed,
    caller: &'a FoundToken,
    data: &'a serde_json::Map<String, Value>,
    remote: Option<std::net::IpAddr>,
    connection: &'a crate::logical::ConnectionInfo,
    now: UnixTime,
}

fn forbidden(msg: impl Into<String>) -> CoreError {
    LogicalError::Forbidden(msg.into()).into()
}

fn bad(msg: impl Into<String>) -> CoreError {
    LogicalError::invalid(msg).into()
}

/// Free text from a request: trimmed, bounded, no control characters.
fn text(f: &Fields<'_>, key: &str) -> Result<String, CoreError> {
    let v = f.string(key)?.unwrap_or_default().trim().to_owned();
    if v.chars().count() > TEXT_MAX {
        return Err(bad(format!("{key} is longer than {TEXT_MAX} characters")));
    }
    if v.chars().any(char::is_control) {
        return Err(bad(format!("{key} must not contain control characters")));
    }
    Ok(v)
}

impl Ctx<'_> {
    fn store(&self) -> Store<'_> {
        Store::new(&self.state.barrier)
    }

    /// The person behind a login token (`None` for tokens no login of a
    /// person made: root, children, AppRole, certificates).
    async fn person(&self, found: &FoundToken) -> Option<Person> {
        let e = &found.entry;
        let name = e.meta.get("username")?;
        let below = e.path.strip_prefix("auth/")?;
        let auth = self.state.auth.read().await;
        let (mount, rest) = auth.route(below)?;
        if rest != format!("login/{name}") {
            return None;
        }
        Some(Person {
            name: name.clone(),
            entity_id: e.entity_id.clone(),
            mount: mount.path.clone(),
            accessor: e.accessor.clone(),
        })
    }

    /// The caller as a person who passed a second factor.
    async fn mfa_person(&self) -> Result<Person, CoreError> {
        let e = &self.caller.entry;
        let mfa = e.meta.get("mfa").is_some_and(|v| v == "true");
        if !mfa || e.meta.contains_key("breakglass_id") {
            return Err(forbidden(NOT_A_PERSON));
        }
        self.person(self.caller)
            .await
            .ok_or_else(|| forbidden(NOT_A_PERSON))
    }

    /// Whether the caller's policies grant `update` on the approve path.
    fn is_approver(&self) -> bool {
        let e = &self.caller.entry;
        if e.meta.contains_key("breakglass_id") {
            return false;
        }
        let acl = self.state.policies.acl(&e.policies, e.entity.as_ref());
        acl.decide(APPROVE_CAPABILITY_PATH, self.now)
            .allows(Capabilities::UPDATE)
    }

    /// Whether the caller asked for `g`.
    async fn is_requester(&self, g: &Grant) -> bool {
        match self.person(self.caller).await {
            Some(p) => {
                p.same_as(&g.requester) && !self.caller.entry.meta.contains_key("breakglass_id")
            }
            None => false,
        }
    }

    async fn load(&self, id: &str) -> Result<Grant, CoreError> {
        self.store()
            .get(id)
            .await?
            .ok_or_else(|| CoreError::Logical(LogicalError::NotFound))
    }

    /// The grant, if the caller asked for it or may approve.
    async fn visible(&self, id: &str) -> Result<Grant, CoreError> {
        let g = self.load(id).await?;
        if self.is_approver() || self.is_requester(&g).await {
            Ok(g)
        } else {
            Err(forbidden(
                "only the requester and approvers may see a break-glass request",
            ))
        }
    }

    async fn write_config(&self) -> Result<Response, CoreError> {
        let old = Config::load(&self.state.barrier).await?;
        let new = old.updated(self.data)?;
        new.store(&self.state.barrier).await?;
        tracing::info!(
            urls = new.webhook_urls.len(),
            max_ttl = new.max_ttl,
            required_approvals = new.required_approvals,
            "break-glass configuration changed"
        );
        Ok(Response::data(new.view()))
    }

    async fn request(&self) -> Result<Response, CoreError> {
        let requester = self.mfa_person().await?;
        let cfg = Config::load(&self.state.barrier).await?;
        let f = Fields(self.data);
        let reason = text(&f, "reason")?;
        if reason.chars().count() < REASON_MIN {
            return Err(bad(format!(
                "a reason of at least {REASON_MIN} characters is required (what is broken, and why this access)"
            )));
        }
        let incident = text(&f, "incident")?;
        let asked = f.duration("ttl")?.unwrap_or(cfg.default_ttl);
        if asked == 0 {
            return Err(bad("ttl must be at least 1s"));
        }
        let ttl = asked.min(cfg.max_ttl);
        let mut policies = f
            .string_list("policies")?
            .unwrap_or_else(|| vec!["emergency-admin".into()]);
        policies.iter_mut().for_each(|p| *p = p.trim().to_owned());
        policies.retain(|p| !p.is_empty());
        policies.sort();
        policies.dedup();
        if policies.is_empty() {
            return Err(bad("policies must name at least one policy"));
        }
        check_grantable(self.state, &cfg, &policies)?;
        let grant = Grant {
            version: 1,
            id: crate::breakglass::new_id()?,
            status: Status::Pending,
            reason,
            incident,
            ttl,
            policies,
            requester,
            requested_at: self.now.secs(),
            approval_expires_at: self.now.secs() + cfg.approval_window as i64,
            required_approvals: cfg.required_approvals,
            approvals: Vec::new(),
            denial: None,
            token_key: None,
            token_accessor: None,
            activated_at: None,
            expires_at: None,
            first_used_at: None,
            ended_at: None,
            ended_by: None,
            notifications: Notifications::default(),
        };
        self.store().create(&grant, &cfg, self.now).await?;
        self.core.breakglass.requested();
        tracing::warn!(id = %grant.id, requester = %grant.requester.name, ttl = grant.ttl, policies = ?grant.policies, "break-glass requested");
        let mut resp = Response::data(grant.view(self.now));
        if ttl < asked {
            resp = resp.with_warning(format!(
                "ttl capped to the configured maximum of {}",
                crate::logical::format_duration(cfg.max_ttl)
            ));
        }
        Ok(resp)
    }

    async fn list(&self) -> Result<Response, CoreError> {
        let f = Fields(self.data);
        let wanted = f.string("status")?;
        let approver = self.is_approver();
        let me = self.person(self.caller).await;
        let mut keys = Vec::new();
        let mut info = serde_json::Map::new();
        for g in self.store().list(1000).await? {
            let mine = me.as_ref().is_some_and(|p| p.same_as(&g.requester));
            if !(approver || mine) {
                continue;
            }
            let status = g.status_at(self.now);
            if wanted.as_deref().is_some_and(|w| w != status.as_str()) {
                continue;
            }
            keys.push(g.id.clone());
            info.insert(g.id.clone(), g.view(self.now));
        }
        if keys.is_empty() {
            return Err(LogicalError::NotFound.into());
        }
        Ok(Response::data(json!({ "keys": keys, "key_info": info })))
    }

    async fn show(&self, id: &str) -> Result<Response, CoreError> {
        let g = self.visible(id).await?;
        Ok(Response::data(g.view(self.now)))
    }

    /// Approve (`approve`) or deny.
    async fn decide(&self, id: &str, approve: bool) -> Result<Response, CoreError> {
        let verb = if approve { "approving" } else { "denying" };
        if !self.is_approver() {
            return Err(forbidden(format!(
                "{verb} break-glass needs update on {APPROVE_CAPABILITY_PATH} in the token's policies"
            )));
        }
        let approver = self.mfa_person().await?;
        let g = self.load(id).await?;
        if g.requester.same_as(&approver) {
            return Err(forbidden(format!(
                "nobody may approve or deny their own break-glass request: another approver must ({verb} {id})"
            )));
        }
        let status = g.status_at(self.now);
        if status != Status::Pending {
            return Err(bad(format!(
                "the request is {}, not pending",
                status.as_str()
            )));
        }
        let f = Fields(self.data);
        let comment = text(&f, "comment")?;
        if !approve && comment.is_empty() {
            return Err(bad("a denial needs a comment saying why"));
        }
        let code = f
            .secret("totp")?
            .filter(|c| !c.expose().trim().is_empty())
            .ok_or_else(|| {
                forbidden(format!(
                "{verb} break-glass needs a fresh TOTP code of the approver in the field 'totp'"
            ))
            })?;
        self.step_up(&approver, &code).await?;
        let cfg = Config::load(&self.state.barrier).await?;
        let now = self.now;
        let updated = self
            .store()
            .update(id, &cfg, now, |g| {
                if g.status_at(now) != Status::Pending {
                    return Err(LogicalError::invalid(format!(
                        "the request is {}, not pending",
                        g.status_at(now).as_str()
                    )));
                }
                if !approve {
                    g.status = Status::Denied;
                    g.denial = Some(Decision {
                        by: approver.name.clone(),
                        time: now.secs(),
                        comment: comment.clone(),
                    });
                    g.ended_at = Some(now.secs());
                    g.ended_by = Some(approver.name.clone());
                    return Ok(Change::announce(EventKind::Denied));
                }
                if g.approvals.iter().any(|a| a.by.same_as(&approver)) {
                    return Err(LogicalError::invalid(
                        "you have already approved this request",
                    ));
                }
                let binding = g.binding();
                g.approvals.push(Approval {
                    by: approver.clone(),
                    time: now.secs(),
                    comment: comment.clone(),
                    binding,
                });
                if g.approvals.len() >= g.required_approvals as usize {
                    g.status = Status::Approved;
                }
                Ok(Change::announce(EventKind::Approved))
            })
            .await?;
        tracing::warn!(%id, approver = %approver.name, status = updated.status.as_str(), "break-glass decision");
        Ok(Response::data(updated.view(self.now)))
    }

    /// Checks and spends a TOTP code of `who`, as their login would.
    async fn step_up(&self, who: &Person, code: &SecretString) -> Result<(), CoreError> {
        let mount = {
            let auth = self.state.auth.read().await;
            auth.entries
                .get(&who.mount)
                .cloned()
                .ok_or_else(|| forbidden("the approver's auth method is gone"))?
        };
        let method = self
            .core
            .registry()
            .auth(&mount.kind)
            .ok_or_else(|| forbidden("the approver's auth method is gone"))?
            .clone();
        let view = View::new(self.state.barrier.clone(), mount.storage_prefix());
        let rate = method.login_rate_per_minute(&view).await?;
        self.core
            .login_limiter
            .check(&mount.uuid, self.remote, rate, self.now)
            .map_err(LogicalError::RateLimited)?;
        let ctx = MountContext {
            mount: &mount,
            view: &view,
            rest: "",
            now: self.now,
            caller: None,
            connection: self.connection,
            token_view: None,
        };
        method
            .complete_second_factor(&ctx, &who.name, code.expose())
            .await?;
        Ok(())
    }

    async fn cancel(&self, id: &str) -> Result<Response, CoreError> {
        let g = self.load(id).await?;
        if !self.is_requester(&g).await {
            return Err(forbidden(
                "only the requester may cancel a break-glass request",
            ));
        }
        let cfg = Config::load(&self.state.barrier).await?;
        let now = self.now;
        let who = g.requester.name.clone();
        let updated = self
            .store()
            .update(id, &cfg, now, |g| {
                let status = g.status_at(now);
                if !matches!(status, Status::Pending | Status::Approved) {
                    return Err(LogicalError::invalid(format!(
                        "the request is {}: only a pending or approved request can be cancelled",
                        status.as_str()
                    )));
                }
                g.status = Status::Cancelled;
                g.ended_at = Some(now.secs());
                g.ended_by = Some(who.clone());
                Ok(Change::announce(EventKind::Cancelled))
            })
            .await?;
        Ok(Response::data(updated.view(now)))
    }

    async fn fetch_token(&self, id: &str) -> Result<Response, CoreError> {
        let g = self.load(id).await?;
        if !self.is_requester(&g).await {
            return Err(forbidden(
                "only the requester may fetch the token of a break-glass grant",
            ));
        }
        let cfg = Config::load(&self.state.barrier).await?;
        let now = self.now;
        for _ in 0..crate::barrier::CAS_ATTEMPTS {
            let Some((mut g, guard)) = self.store().read_for_change(id).await? else {
                return Err(LogicalError::NotFound.into());
            };
            if g.token_key.is_some() || g.activated_at.is_some() {
                return Err(bad(
                    "the token of this grant was already fetched; it is handed out once",
                ));
            }
            let status = g.status_at(now);
            if status != Status::Approved {
                return Err(bad(format!(
                    "the request is {}: a token is handed out only once it is approved",
                    status.as_str()
                )));
            }
            if !g.approvals_hold() {
                return Err(forbidden(
                    "the request changed after it was approved: the approval is void",
                ));
            }
            check_grantable(self.state, &cfg, &g.policies)?;
            let params = self.grant_token_params(&g);
            let mut written = None;
            let store = self.store();
            let created = self
                .state
                .tokens
                .create_if(params, now, &[guard], |key, entry| {
                    g.status = Status::Active;
                    g.token_key = Some(key.to_owned());
                    g.token_accessor = Some(entry.accessor.clone());
                    g.activated_at = Some(now.secs());
                    g.expires_at = entry.expire_time;
                    let ops = store.change_ops(&g, &cfg, Some(EventKind::Activated), now);
                    written = Some(g.clone());
                    ops
                })
                .await?;
            let (Some((token, entry)), Some(g)) = (created, written) else {
                continue;
            };
            tracing::warn!(%id, requester = %g.requester.name, expires_at = ?g.expires_at, "break-glass token fetched");
            let mut resp = Response::auth(crate::token::paths::auth_data(&token, &entry, now));
            if let ResponseBody::Envelope { data, .. } = &mut resp.body {
                *data = Some(g.view(now));
            }
            return Ok(resp);
        }
        Err(crate::barrier::BarrierError::Contended.into())
    }

    fn grant_token_params(&self, g: &Grant) -> CreateParams {
        let mut meta = std::collections::BTreeMap::new();
        meta.insert("breakglass_id".to_owned(), g.id.clone());
        meta.insert("username".to_owned(), g.requester.name.clone());
        CreateParams {
            policies: g.policies.clone(),
            no_default_policy: true,
            ttl: Some(g.ttl),
            explicit_max_ttl: g.ttl,
            num_uses: 0,
            renewable: false,
            orphan: true,
            display_name: format!("breakglass-{}", g.requester.name),
            meta,
            path: format!("sys/breakglass/{}/token", g.id),
            entity: self.caller.entry.entity.clone(),
            period: 0,
            bound_cidrs: self.caller.entry.bound_cidrs.clone(),
            bound_cert_sha256: self.caller.entry.bound_cert_sha256.clone(),
        }
    }

    async fn revoke(&self, id: &str) -> Result<Response, CoreError> {
        let g = self.load(id).await?;
        let who = match self.person(self.caller).await {
            Some(p) if self.is_requester(&g).await || self.is_approver() => p.name,
            None if self.is_approver() => self.caller.entry.display_name.clone(),
            _ => {
                return Err(forbidden(
                    "only the requester or an approver may revoke a break-glass grant",
                ))
            }
        };
        let cfg = Config::load(&self.state.barrier).await?;
        let now = self.now;
        let updated = self
            .store()
            .update(id, &cfg, now, |g| {
                let status = g.status_at(now);
                if status.is_final() {
                    return Err(LogicalError::invalid(format!(
                        "the grant is {} already",
                        status.as_str()
                    )));
                }
                g.status = Status::Revoked;
                g.ended_at = Some(now.secs());
                g.ended_by = Some(who.clone());
                Ok(Change::announce(EventKind::Revoked))
            })
            .await?;
        // The grant no longer being active already refuses its token on every
        // node (each use reads the grant from storage); this removes it too.
        if let Some(key) = &updated.token_key {
            self.state.tokens.revoke_tree(key).await?;
        }
        tracing::warn!(%id, by = %who, "break-glass revoked");
        Ok(Response::data(updated.view(now)))
    }

    async fn report(&self, id: &str) -> Result<Response, CoreError> {
        let g = self.visible(id).await?;
        let files = self.state.audit.file_paths();
        let timeline = crate::core::breakglass::timeline(&files, &g).await?;
        Ok(Response::data(json!({
            "id": g.id,
            "request": g.view(self.now),
            "timeline": timeline,
            "audit_files": files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        })))
    }
}

/// Every policy must be grantable and exist.
fn check_grantable(state: &Unsealed, cfg: &Config, policies: &[String]) -> Result<(), CoreError> {
    for p in policies {
        if !cfg.grantable_policies.iter().any(|g| g == p) {
            return Err(bad(format!(
                "policy {p:?} is not grantable through break-glass (grantable: {})",
                cfg.grantable_policies.join(", ")
            )));
        }
        if state.policies.get(p).is_none() {
            return Err(bad(format!("there is no policy named {p:?}")));
        }
    }
    Ok(())
}
