//! `/ui/admin/…`: the admin's pages (issue 10 point 7): signing keys and their rotation,
//! instance settings, the audit trail, runners and resource servers.
//!
//! Only an admin session sees them: anyone else (signed out, or signed in with a personal access
//! token) gets the same 404 as a page that does not exist, before any form is read. Every read
//! and write is the one the admin API's handler makes (`service::ops::rotate`,
//! `service::admin::*` audited in the change's transaction, `service::credentials::reset_*`,
//! `service::audit::instance_events`), and input is checked by the API's own validation
//! ([`NewRunnerBody::validate`], [`AuditQuery::filter`], `http::input`), so the console holds no
//! second copy of a rule.
//!
//! Security invariant: a created or reset client secret is shown exactly once, in the page that
//! answers the POST (never in a URL, a redirect, a flash cookie or a log); like every console
//! page it is sent with `Cache-Control: no-store`. Each form that makes a secret (register,
//! reset secret) carries a one-time id ([`OnceForms`]): the browser re-posting it (a reload of
//! the secret's page, a resubmission from history) is refused instead of registering a second
//! client or replacing the secret just shown.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use maud::{html, Markup};
use serde_json::Value;

use super::session::{self, Fields, Signed};
use crate::app::AppState;
use crate::domain::time::rfc3339;
use crate::domain::RunnerType;
use crate::error::ApiError;
use crate::http::admin::NewRunnerBody;
use crate::http::audit::AuditQuery;
use crate::http::input;
use crate::keys::rotation::KeyFamily;
use crate::secret::Secret;
use crate::service::admin as audited;
use crate::service::editor::Actor;
use crate::service::ops::{self, RotateError};
use crate::service::{audit as audit_service, credentials, now};
use crate::signing::KeyView;
use crate::store::audit::{Actor as AuditActor, AuditEvent};
use crate::store::clients::{self, NewResourceServer, ResourceServer, ResourceServerPatch, Runner, RunnerPatch};
use crate::store::{namespaces, settings, Listed, Page};

/// Every change made here is the admin's, recorded as such (as through the admin API).
const BY_ADMIN: AuditActor = AuditActor::Admin;
/// Rows per page of the admin lists.
pub const PER_PAGE: u64 = 20;

const KEYS: &str = "/ui/admin/keys";
const SETTINGS: &str = "/ui/admin/settings";
const AUDIT: &str = "/ui/admin/audit";
const RUNNERS: &str = "/ui/admin/runners";
const SERVERS: &str = "/ui/admin/resource_servers";

/// The admin pages, for the navigation the admin sees.
pub const PAGES: &[(&str, &str)] =
    &[(KEYS, "Keys"), (SETTINGS, "Settings"), (AUDIT, "Audit"), (RUNNERS, "Runners"), (SERVERS, "Resource servers")];

/// The admin's session, or the 404 of an unknown page for anyone else.
async fn admin(req: &HttpRequest, state: &web::Data<AppState>) -> Result<Signed, HttpResponse> {
    match session::signed(req, state).await {
        Some(signed) if signed.session.actor == Actor::Admin => Ok(signed),
        _ => Err(crate::http::not_found(req.clone()).await),
    }
}

/// The admin check, then the POST preamble of every console form (CSRF before anything else).
async fn admin_posted(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    body: &[u8],
) -> Result<(Signed, Fields), HttpResponse> {
    session::with_csrf(admin(req, state).await?, body)
}

macro_rules! admin_or_return {
    ($e:expr) => {
        match $e {
            Ok(found) => found,
            Err(res) => return res,
        }
    };
}

/// The page of a refusal, with the API's status and its safe message (an internal cause goes to
/// the log only).
fn refusal(signed: &Signed, e: ApiError) -> HttpResponse {
    if let ApiError::Internal(cause) | ApiError::Unavailable(cause) = &e {
        log::error!("console admin page: {cause}");
    }
    super::error_page(e.status_code(), Some(signed), &e.to_string())
}

/// The page number a list's query asks for (1 when absent or not a number).
fn page_number(query: &Fields) -> u64 {
    query.one("page").and_then(|p| p.parse().ok()).unwrap_or(1).max(1)
}

fn when(ts: Option<i64>) -> String {
    ts.map(rfc3339).unwrap_or_else(|| "—".into())
}

fn notice(message: &Option<String>) -> Markup {
    html! { @if let Some(m) = message { p.error role="alert" { (m) } } }
}

/// The form field of a form's one-time id.
const ONCE_FIELD: &str = "once";
/// How long a used one-time id is remembered (seconds)…
const ONCE_LIFETIME: i64 = 3600;
/// …and how many at most.
const ONCE_KEPT: usize = 10_000;

/// The one-time ids of the forms that make a secret, used at most once each (kept in memory for
/// [`ONCE_LIFETIME`], per process). A form posted without one is accepted as a crafted request.
#[derive(Default)]
pub struct OnceForms(Mutex<HashMap<String, i64>>);

impl OnceForms {
    /// Marks `id` used at `now`; `false` when it was used already.
    fn first_use(&self, id: &str, now: i64) -> bool {
        let mut used = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        used.retain(|_, at| now - *at < ONCE_LIFETIME);
        if used.len() >= ONCE_KEPT {
            if let Some(oldest) = used.iter().min_by_key(|(_, at)| **at).map(|(k, _)| k.clone()) {
                used.remove(&oldest);
            }
        }
        used.insert(id.to_owned(), now).is_none()
    }
}

/// The hidden one-time id of a form that makes a secret.
fn once_field() -> Markup {
    html! { input type="hidden" name=(ONCE_FIELD) value=(Secret::generate("jtform_").expose()); }
}

/// `true` when the form's one-time id (if any) was used before: the form is refused.
fn resubmitted(state: &AppState, form: &Fields) -> bool {
    form.one(ONCE_FIELD).is_some_and(|id| !state.console_forms.first_use(id, now()))
}

const RESUBMITTED: &str = "This form was already sent, and its secret shown then, once: nothing was changed now. \
                           To get a new secret, use Reset secret.";

// ---- keys ----

pub async fn keys(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let signed = admin_or_return!(admin(&req, &state).await);
    let res = keys_page(&state, &signed, StatusCode::OK, None).await;
    session::shown(res, &state, &signed)
}

/// `POST /ui/admin/keys/rotate`: the API's rotation with its guard (never forced here); a
/// refusal is the keys page again with the guard's reason (409).
pub async fn rotate(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    let (signed, form) = admin_or_return!(admin_posted(&req, &state, &body).await);
    let family = match form.one("family").unwrap_or("job").parse::<KeyFamily>() {
        Ok(family) => family,
        Err(_) => {
            return keys_page(&state, &signed, StatusCode::BAD_REQUEST, Some("family must be job or id_token".into()))
                .await
        }
    };
    match ops::rotate(&state.keys, &state.store, family, false, now()).await {
        Ok(_) => session::redirect_with(
            &state,
            KEYS,
            &format!("Rotated the {} keys: the next key signs now, and a new next key is published.", family.as_str()),
        ),
        Err(RotateError::TooSoon(e)) => keys_page(&state, &signed, StatusCode::CONFLICT, Some(e.to_string())).await,
        Err(e) => refusal(&signed, e.into()),
    }
}

async fn keys_page(state: &AppState, signed: &Signed, status: StatusCode, refused: Option<String>) -> HttpResponse {
    let keys: Vec<KeyView> = match state.keys.list(&state.store, None).await {
        Ok(keys) => keys,
        Err(e) => return refusal(signed, e.into()),
    };
    let at = now();
    let body = html! {
        (super::flash(signed))
        h1 { "Signing keys" }
        p { "A " code { "next" } " key is published in the JWKS before it signs; rotation makes it active, retires the active key and publishes a new next key. A retired key stays published while tokens it signed may be unexpired." }
        (notice(&refused))
        div.table { table {
            thead { tr {
                th scope="col" { "Family" } th scope="col" { "State" } th scope="col" { "Algorithm" } th scope="col" { "Key id (kid)" }
                th scope="col" { "Created" } th scope="col" { "Published" } th scope="col" { "Active since" }
                th scope="col" { "Retired" } th scope="col" { "May be promoted" }
            } }
            tbody {
                @for k in &keys {
                    tr {
                        td { (k.family.as_str()) }
                        td { strong { (k.state.as_str()) } }
                        td { (k.alg.as_str()) }
                        td { code { (k.kid) } }
                        td { (rfc3339(k.created_at)) }
                        td { @if k.published { "since " (rfc3339(k.created_at)) } @else { "no" } }
                        td { (when(k.activated_at)) }
                        td { (when(k.retired_at)) }
                        td {
                            @match ops::promotable_at(k) {
                                Some(t) if t <= at => { "now (since " (rfc3339(t)) ")" }
                                Some(t) => { "from " (rfc3339(t)) " (in " (t - at) " s)" }
                                None => "—",
                            }
                        }
                    }
                }
            }
        } }
        p { "Each family (" code { "job" } ": job tokens; " code { "id_token" } ": ID tokens for cloud federation) rotates on its own. Rotating is refused while the next key is younger than the JWKS cache lifetime, so that no verifier meets a token signed by a key it has not fetched yet." }
        @for family in KeyFamily::ALL {
            form method="post" action={ (KEYS) "/rotate" } {
                (super::csrf_field(signed))
                input type="hidden" name="family" value=(family.as_str());
                button type="submit" { "Rotate the " (family.as_str()) " keys now" }
            }
        }
    };
    super::page(status, "Signing keys", Some(signed), body)
}

// ---- instance settings ----

pub async fn settings(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let signed = admin_or_return!(admin(&req, &state).await);
    let current = match state.store.run(settings::get).await {
        Ok(current) => current,
        Err(e) => return refusal(&signed, e.into()),
    };
    let body = html! {
        (super::flash(&signed))
        h1 { "Instance settings" }
        form method="post" action=(SETTINGS) {
            (super::csrf_field(&signed))
            fieldset {
                legend { "Job token settings of every project" }
                label.check for="enforce" {
                    input #enforce type="checkbox" name="enforce_job_token_allowlist" checked[current.enforce_job_token_allowlist];
                    "Enforce job token allowlists (" code { "enforce_job_token_allowlist" } "): every project's inbound allowlist is on and cannot be turned off"
                }
                br;
                label.check for="elevation" {
                    input #elevation type="checkbox" name="job_token_elevation_allowed" checked[current.job_token_elevation_allowed];
                    "Allow elevated job token scopes (" code { "job_token_elevation_allowed" } "): groups may still forbid them below"
                }
            }
            button type="submit" { "Save settings" }
        }
    };
    session::shown(super::page(StatusCode::OK, "Instance settings", Some(&signed), body), &state, &signed)
}

/// `POST /ui/admin/settings`: the form sets every setting (an unticked box is false), through
/// the API's audited update.
pub async fn save_settings(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    let (signed, form) = admin_or_return!(admin_posted(&req, &state, &body).await);
    let enforce = Some(form.one("enforce_job_token_allowlist") == Some("on"));
    let elevation = Some(form.one("job_token_elevation_allowed") == Some("on"));
    match state.store.run(move |c| audited::update_settings(c, BY_ADMIN, enforce, elevation, now())).await {
        Ok(_) => session::redirect_with(&state, SETTINGS, "Saved the instance settings."),
        Err(e) => refusal(&signed, e.into()),
    }
}

// ---- audit events ----

/// The audit page's filter fields, as the form and `GET /api/v1/audit_events` name them.
const AUDIT_FILTERS: [&str; 5] = ["target_type", "target_id", "actor", "created_after", "created_before"];

/// `GET /ui/admin/audit`: the API's filters (a bad one is the form again with its message, 400),
/// newest first, with previous/next links that keep the filters.
pub async fn audit(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let signed = admin_or_return!(admin(&req, &state).await);
    let query = Fields::parse(req.query_string().as_bytes());
    let given: Vec<(&str, String)> = AUDIT_FILTERS
        .iter()
        .filter_map(|&name| query.one(name).map(str::trim).filter(|v| !v.is_empty()).map(|v| (name, v.to_owned())))
        .collect();
    let value = |name: &str| given.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone());
    let number = page_number(&query);
    let filter = match value("target_id").map(|t| t.parse::<i64>()).transpose() {
        Err(_) => Err(ApiError::BadRequest("target id must be a whole number".into())),
        Ok(target_id) => AuditQuery {
            target_type: value("target_type"),
            target_id,
            actor: value("actor"),
            created_after: value("created_after"),
            created_before: value("created_before"),
            ..AuditQuery::default()
        }
        .filter(),
    };
    let (status, listed, error) = match filter {
        Ok(filter) => match audit_service::instance_events(&state.store, filter, Page::new(number, PER_PAGE)).await {
            Ok(listed) => (StatusCode::OK, Some(listed), None),
            Err(e) => return refusal(&signed, e.into()),
        },
        Err(e @ ApiError::BadRequest(_)) => (StatusCode::BAD_REQUEST, None, Some(e.to_string())),
        Err(e) => return refusal(&signed, e),
    };
    let kept = serde_urlencoded::to_string(&given).unwrap_or_default();
    let body = html! {
        h1 { "Audit events" }
        form method="get" action=(AUDIT) {
            fieldset {
                legend { "Filter" }
                label for="f-target_type" { "Target type (e.g. runner, project, instance_settings)" }
                input #f-target_type type="text" name="target_type" value=(value("target_type").unwrap_or_default());
                label for="f-target_id" { "Target id" }
                input #f-target_id type="text" inputmode="numeric" name="target_id" value=(value("target_id").unwrap_or_default());
                label for="f-actor" { "Actor (admin, system, cli, user, runner, user:<id>, runner:<id>)" }
                input #f-actor type="text" name="actor" value=(value("actor").unwrap_or_default());
                label for="f-created_after" { "Created after (date or RFC 3339 time)" }
                input #f-created_after type="text" name="created_after" placeholder="2026-01-31" value=(value("created_after").unwrap_or_default());
                label for="f-created_before" { "Created before" }
                input #f-created_before type="text" name="created_before" value=(value("created_before").unwrap_or_default());
            }
            button type="submit" { "Filter" }
        }
        (notice(&error))
        @if let Some(listed) = &listed { (events_table(listed)) (super::pager(AUDIT, &kept, number, PER_PAGE, listed.total)) }
    };
    super::page(status, "Audit events", Some(&signed), body)
}

fn events_table(listed: &Listed<AuditEvent>) -> Markup {
    html! {
        p.muted { (listed.total) " events, newest first." }
        @if !listed.items.is_empty() {
            div.table { table {
                thead { tr { th scope="col" { "When" } th scope="col" { "Actor" } th scope="col" { "Action" } th scope="col" { "Target" } th scope="col" { "Change" } } }
                tbody {
                    @for e in &listed.items {
                        tr {
                            td { (rfc3339(e.created_at)) }
                            td { (e.author.kind) @if let Some(id) = e.author.id { ":" (id) } " " span.muted { (e.author.name) } }
                            td { code { (e.action) } }
                            td { (e.entity_type) @if let Some(id) = e.entity_id { " " (id) } @if let Some(p) = &e.entity_path { " " code { (p) } } }
                            td {
                                @if e.details.before.is_some() || e.details.after.is_some() {
                                    details {
                                        summary { "Before / after" }
                                        pre { (json(&e.details.before)) "\n" (json(&e.details.after)) }
                                    }
                                }
                            }
                        }
                    }
                }
            } }
        }
    }
}

fn json(value: &Option<Value>) -> String {
    value.as_ref().map_or_else(|| "—".to_owned(), Value::to_string)
}

// ---- runners ----

pub async fn runners(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let signed = admin_or_return!(admin(&req, &state).await);
    let number = page_number(&Fields::parse(req.query_string().as_bytes()));
    let res = runners_page(&state, &signed, number, StatusCode::OK, None, None).await;
    session::shown(res, &state, &signed)
}

async fn runners_page(
    state: &AppState,
    signed: &Signed,
    number: u64,
    status: StatusCode,
    error: Option<String>,
    form: Option<&Fields>,
) -> HttpResponse {
    let page = Page::new(number, PER_PAGE);
    let listed = match state.store.read(move |c| clients::list_runners(c, page)).await {
        Ok(listed) => listed,
        Err(e) => return refusal(signed, e.into()),
    };
    let asked = |name: &str| form.and_then(|f| f.one(name)).unwrap_or_default().to_owned();
    let body = html! {
        (super::flash(signed))
        h1 { "Runners" }
        (notice(&error))
        (clients_table("No runners yet.", ["Runner", "Serves", "Maximum timeout", "State", "Actions"], &listed.items, |r| runner_row(signed, r)))
        (super::pager(RUNNERS, "", number, PER_PAGE, listed.total))
        h2 #new-runner { "Register a runner" }
        form method="post" action=(RUNNERS) {
            (super::csrf_field(signed))
            (once_field())
            label for="r-type" { "Type" }
            select #r-type name="runner_type" {
                @for t in ["instance", "group", "project"] { option value=(t) selected[asked("runner_type") == t] { (t) } }
            }
            label for="r-group" { "Group (full path; group runners only)" }
            input #r-group type="text" name="group" value=(asked("group"));
            label for="r-projects" { "Projects (full paths, one per line or comma-separated; project runners only)" }
            textarea #r-projects name="projects" { (asked("projects")) }
            label for="r-timeout" { "Maximum timeout in seconds (optional)" }
            input #r-timeout type="text" inputmode="numeric" name="maximum_timeout" value=(asked("maximum_timeout"));
            label for="r-description" { "Description" }
            input #r-description type="text" name="description" value=(asked("description"));
            button type="submit" { "Register" }
        }
    };
    super::page(status, "Runners", Some(signed), body)
}

fn runner_row(signed: &Signed, r: &Runner) -> Markup {
    html! {
        tr {
            td { "#" (r.id) " " code { (r.client_id) } @if !r.description.is_empty() { br; (r.description) } }
            td {
                (r.runner_type.as_str())
                @if let Some(g) = r.group_id { " (group " (g) ")" }
                @if !r.project_ids.is_empty() { " (projects " (r.project_ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")) ")" }
            }
            td { @match r.maximum_timeout { Some(t) => { (t) " s" }, None => "—" } }
            td { @if r.paused { strong { "paused" } } @else { "active" } }
            td { (client_actions(signed, RUNNERS, r.id, &format!("runner {}", r.id), r.paused, ["pause", "Pause"], ["resume", "Resume"])) }
        }
    }
}

/// The ids of the group and projects a runner form names by path; `Err` is the message.
async fn runner_targets(state: &AppState, form: &Fields) -> Result<(Option<i64>, Vec<i64>), ApiError> {
    let group = form.one("group").map(str::trim).filter(|g| !g.is_empty()).map(str::to_owned);
    let projects: Vec<String> = form
        .one("projects")
        .unwrap_or_default()
        .split([',', '\n', '\r'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    if projects.len() > 1000 {
        return Err(ApiError::Unprocessable("a runner serves at most 1000 projects".into()));
    }
    let found = state
        .store
        .read(move |c| {
            let group = match group {
                Some(path) => Some(namespaces::find_group_by_path(c, &path)?.map(|g| g.id).ok_or(path)),
                None => None,
            };
            let projects = projects
                .into_iter()
                .map(|path| Ok(namespaces::find_project_by_path(c, &path)?.map(|p| p.id).ok_or(path)))
                .collect::<crate::store::Result<Vec<_>>>()?;
            Ok((group, projects))
        })
        .await?;
    let group = found.0.transpose().map_err(|p| ApiError::Unprocessable(format!("there is no group {p}")))?;
    let projects = found
        .1
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|p| ApiError::Unprocessable(format!("there is no project {p}")))?;
    Ok((group, projects))
}

/// `POST /ui/admin/runners`: registers a runner as `POST /api/v1/runners` does and shows its
/// secret this once.
pub async fn create_runner(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    let (signed, form) = admin_or_return!(admin_posted(&req, &state, &body).await);
    if resubmitted(&state, &form) {
        return runners_page(&state, &signed, 1, StatusCode::CONFLICT, Some(RESUBMITTED.into()), None).await;
    }
    let checked = async {
        let runner_type: RunnerType = form
            .one("runner_type")
            .unwrap_or_default()
            .parse()
            .map_err(|_| ApiError::Unprocessable("choose a runner type: instance, group or project".into()))?;
        let maximum_timeout = match form.one("maximum_timeout").map(str::trim).filter(|t| !t.is_empty()) {
            None => None,
            Some(t) => Some(
                t.parse::<i64>()
                    .map_err(|_| ApiError::Unprocessable("maximum timeout must be a whole number of seconds".into()))?,
            ),
        };
        let (group_id, project_ids) = runner_targets(&state, &form).await?;
        let description = form.one("description").unwrap_or_default().trim().to_owned();
        NewRunnerBody { runner_type, group_id, project_ids, maximum_timeout, description }.validate()
    };
    let new = match checked.await {
        Ok(new) => new,
        Err(e @ (ApiError::Unprocessable(_) | ApiError::BadRequest(_))) => {
            return runners_page(&state, &signed, 1, StatusCode::UNPROCESSABLE_ENTITY, Some(e.to_string()), Some(&form))
                .await
        }
        Err(e) => return refusal(&signed, e),
    };
    match state.store.run(move |c| audited::register_runner(c, BY_ADMIN, &new, now())).await {
        Ok((runner, secret)) => secret_page(&signed, "Runner registered", &runner.client_id, &secret, RUNNERS),
        Err(e) => refusal(&signed, e.into()),
    }
}

/// `POST /ui/admin/runners/{id}/{reset_secret|pause|resume}`.
pub async fn runner_action(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> HttpResponse {
    let (signed, form) = admin_or_return!(admin_posted(&req, &state, &body).await);
    let (id, action) = path.into_inner();
    let Ok(id) = id.parse::<i64>() else { return no_such_page(&signed) };
    let paused = match action.as_str() {
        "reset_secret" if resubmitted(&state, &form) => {
            return runners_page(&state, &signed, 1, StatusCode::CONFLICT, Some(RESUBMITTED.into()), None).await
        }
        "reset_secret" => {
            return match credentials::reset_runner_secret(&state.store, BY_ADMIN, id, now()).await {
                Ok((runner, secret)) => secret_page(&signed, "New runner secret", &runner.client_id, &secret, RUNNERS),
                Err(e) => refusal(&signed, e.into()),
            }
        }
        "pause" => true,
        "resume" => false,
        _ => return no_such_page(&signed),
    };
    let patch = RunnerPatch { paused: Some(paused), maximum_timeout: None, description: None };
    match state.store.run(move |c| audited::update_runner(c, BY_ADMIN, id, &patch, now())).await {
        Ok(r) => session::redirect_with(
            &state,
            RUNNERS,
            &format!(
                "Runner {} is {}.",
                r.id,
                if r.paused { "paused: it starts no new jobs (the ones it runs may finish)" } else { "active again" }
            ),
        ),
        Err(e) => refusal(&signed, e.into()),
    }
}

// ---- resource servers ----

pub async fn resource_servers(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let signed = admin_or_return!(admin(&req, &state).await);
    let number = page_number(&Fields::parse(req.query_string().as_bytes()));
    let res = servers_page(&state, &signed, number, StatusCode::OK, None, None).await;
    session::shown(res, &state, &signed)
}

async fn servers_page(
    state: &AppState,
    signed: &Signed,
    number: u64,
    status: StatusCode,
    error: Option<String>,
    form: Option<&Fields>,
) -> HttpResponse {
    let page = Page::new(number, PER_PAGE);
    let listed = match state.store.read(move |c| clients::list_resource_servers(c, page)).await {
        Ok(listed) => listed,
        Err(e) => return refusal(signed, e.into()),
    };
    let asked = |name: &str| form.and_then(|f| f.one(name)).unwrap_or_default().to_owned();
    let body = html! {
        (super::flash(signed))
        h1 { "Resource servers" }
        (notice(&error))
        (clients_table("No resource servers yet.", ["Resource server", "Audience", "Created", "State", "Actions"], &listed.items, |rs| server_row(signed, rs)))
        (super::pager(SERVERS, "", number, PER_PAGE, listed.total))
        h2 #new-server { "Register a resource server" }
        form method="post" action=(SERVERS) {
            (super::csrf_field(signed))
            (once_field())
            label for="s-name" { "Name" }
            input #s-name type="text" name="name" required value=(asked("name"));
            label for="s-audience" { "Audience (absolute URIs, one per line; optional)" }
            textarea #s-audience name="audience" { (asked("audience")) }
            button type="submit" { "Register" }
        }
    };
    super::page(status, "Resource servers", Some(signed), body)
}

fn server_row(signed: &Signed, rs: &ResourceServer) -> Markup {
    html! {
        tr {
            td { "#" (rs.id) " " (rs.name) br; code { (rs.client_id) } }
            td { @if rs.audience.is_empty() { span.muted { "any" } } @else { (rs.audience.join(" ")) } }
            td { (rfc3339(rs.created_at)) }
            td { @if rs.disabled { strong { "disabled" } } @else { "enabled" } }
            td { (client_actions(signed, SERVERS, rs.id, &rs.name, rs.disabled, ["disable", "Disable"], ["enable", "Enable"])) }
        }
    }
}

/// `POST /ui/admin/resource_servers`: registers one as `POST /api/v1/resource_servers` does
/// (the same checks of name and audience) and shows its secret this once.
pub async fn create_resource_server(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    let (signed, form) = admin_or_return!(admin_posted(&req, &state, &body).await);
    if resubmitted(&state, &form) {
        return servers_page(&state, &signed, 1, StatusCode::CONFLICT, Some(RESUBMITTED.into()), None).await;
    }
    let audience: Vec<Value> =
        form.one("audience").unwrap_or_default().split_whitespace().map(|uri| Value::String(uri.to_owned())).collect();
    let checked = input::text("name", form.one("name").unwrap_or_default().trim(), 255, false)
        .and_then(|name| Ok(NewResourceServer { name, audience: input::audience(&Value::Array(audience))? }));
    let new = match checked {
        Ok(new) => new,
        Err(e) => {
            return servers_page(&state, &signed, 1, StatusCode::UNPROCESSABLE_ENTITY, Some(e.to_string()), Some(&form))
                .await
        }
    };
    match state.store.run(move |c| audited::register_resource_server(c, BY_ADMIN, &new, now())).await {
        Ok((server, secret)) => secret_page(&signed, "Resource server registered", &server.client_id, &secret, SERVERS),
        Err(e) => refusal(&signed, e.into()),
    }
}

/// `POST /ui/admin/resource_servers/{id}/{reset_secret|disable|enable}`.
pub async fn resource_server_action(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> HttpResponse {
    let (signed, form) = admin_or_return!(admin_posted(&req, &state, &body).await);
    let (id, action) = path.into_inner();
    let Ok(id) = id.parse::<i64>() else { return no_such_page(&signed) };
    let disabled = match action.as_str() {
        "reset_secret" if resubmitted(&state, &form) => {
            return servers_page(&state, &signed, 1, StatusCode::CONFLICT, Some(RESUBMITTED.into()), None).await
        }
        "reset_secret" => {
            return match credentials::reset_resource_server_secret(&state.store, BY_ADMIN, id, now()).await {
                Ok((rs, secret)) => secret_page(&signed, "New resource server secret", &rs.client_id, &secret, SERVERS),
                Err(e) => refusal(&signed, e.into()),
            }
        }
        "disable" => true,
        "enable" => false,
        _ => return no_such_page(&signed),
    };
    let patch = ResourceServerPatch { name: None, audience: None, disabled: Some(disabled) };
    match state.store.run(move |c| audited::update_resource_server(c, BY_ADMIN, id, &patch, now())).await {
        Ok(rs) => session::redirect_with(
            &state,
            SERVERS,
            &format!(
                "{} is {}.",
                rs.name,
                if rs.disabled { "disabled: its credentials authenticate nothing" } else { "enabled again" }
            ),
        ),
        Err(e) => refusal(&signed, e.into()),
    }
}

/// The table of a list of runners or resource servers, or `empty` when there are none.
fn clients_table<T>(empty: &str, headings: [&str; 5], items: &[T], row: impl Fn(&T) -> Markup) -> Markup {
    html! {
        @if items.is_empty() { p.muted { (empty) } }
        @else {
            div.table { table {
                thead { tr { @for h in headings { th scope="col" { (h) } } } }
                tbody { @for item in items { (row(item)) } }
            } }
        }
    }
}

/// A runner's or resource server's row actions: reset its secret (a one-time form: the answer
/// shows the new secret), and stop or start it (`[action, label]` of each; `stopped` says which
/// one applies). `who` names it for screen readers.
fn client_actions(
    signed: &Signed,
    base: &str,
    id: i64,
    who: &str,
    stopped: bool,
    stop: [&str; 2],
    start: [&str; 2],
) -> Markup {
    let [action, label] = if stopped { start } else { stop };
    html! {
        form.inline method="post" action={ (base) "/" (id) "/reset_secret" } {
            (super::csrf_field(signed))
            (once_field())
            button.secondary type="submit" aria-label={ "Reset secret of " (who) } { "Reset secret" }
        }
        " "
        form.inline method="post" action={ (base) "/" (id) "/" (action) } {
            (super::csrf_field(signed))
            @if stopped { button type="submit" aria-label={ (label) " " (who) } { (label) } }
            @else { button.danger type="submit" aria-label={ (label) " " (who) } { (label) } }
        }
    }
}

fn no_such_page(signed: &Signed) -> HttpResponse {
    super::error_page(StatusCode::NOT_FOUND, Some(signed), "No such page.")
}

/// The one page that ever shows a client secret: the answer to the POST that made it.
fn secret_page(signed: &Signed, title: &str, client_id: &str, secret: &Secret, back: &str) -> HttpResponse {
    let body = html! {
        h1 { (title) }
        p role="status" { strong { "Copy the client secret now." } " It is shown only on this page, only this once; it is stored hashed and cannot be shown again (reset it to get a new one)." }
        dl {
            dt { "Client id" } dd { code #client-id { (client_id) } }
            dt { "Client secret" } dd { code #client-secret { (secret.expose()) } }
        }
        p { a href=(back) { "Back to the list" } }
    };
    super::page(StatusCode::OK, title, Some(signed), body)
}
