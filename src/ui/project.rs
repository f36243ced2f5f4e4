//! `/ui/projects/{full_path}`: a project's job token settings, its allowlist (own and inherited),
//! its outbound entries and the "Why?" panel. Forms post to `/ui/projects/{full_path}/-/{action}`
//! and come back with a 303 and a flash message. Who may see and change what is the API's rule:
//! every read and write goes through [`crate::service::job_token_scope`], which refuses a
//! Developer (403) and hides what the user cannot see (404).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};

use super::session::{self, Fields, Signed};
use crate::app::AppState;
use crate::domain::{ProjectId, Scope, ScopeSet};
use crate::service::console::{self, WhyAnswer, WhyQuestion};
use crate::service::decision::TargetRef;
use crate::service::editor::Actor;
use crate::service::inspect::{self, InspectRequest};
use crate::service::job_token_scope::{
    self as scope_service, InboundSource, ProjectChange, ProjectSettings, ScopeError, ShownEntry, ShownOutbound,
};
use crate::service::now;
use crate::store::allowlist::{Authorization, EntryScopes, Node, MAX_ENTRIES};
use crate::store::{namespaces, Listed, Page};

/// The console URL of a project page, or of one of its actions.
pub fn url(full_path: &str, action: Option<&str>) -> String {
    let mut out = String::from("/ui/projects/");
    for b in full_path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'/' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    if let Some(action) = action {
        out.push_str("/-/");
        out.push_str(action);
    }
    out
}

/// Everything the page shows, each part read by the service the API uses for it.
struct View {
    id: ProjectId,
    path: String,
    settings: ProjectSettings,
    projects: Listed<ShownEntry>,
    groups: Listed<ShownEntry>,
    inherited: Vec<(String, Vec<ShownEntry>, usize)>,
    outbound: Listed<ShownOutbound>,
    log: Listed<Authorization>,
    found: Option<Found>,
}

async fn load(state: &AppState, signed: &Signed, path: &str) -> Result<View, ScopeError> {
    let actor = signed.session.actor;
    let wanted = path.to_owned();
    let found = state.store.read(move |c| namespaces::find_project_by_path(c, &wanted)).await?;
    let project = found.ok_or(ScopeError::NotFound(Node::Project(0)))?;
    let (id, owner) = (project.id, Node::Project(project.id));
    let store = &state.store;
    let page = Page::new(1, crate::store::page::MAX_PER_PAGE);
    Ok(View {
        id,
        path: project.path_with_namespace,
        settings: scope_service::project_settings_of(store, actor, id).await?,
        projects: all_entries(store, actor, owner, "project").await?,
        groups: all_entries(store, actor, owner, "group").await?,
        inherited: scope_service::inherited_entries(store, actor, id).await?,
        outbound: scope_service::outbound(store, actor, id, page).await?,
        log: scope_service::authorizations(store, actor, id, page).await?,
        found: None,
    })
}

/// Every allowlist entry of one kind (up to the 200 limit), read page by page with the service
/// the API's list uses, so that every entry is on the page and editable.
pub(super) async fn all_entries(
    store: &crate::store::Store,
    actor: Actor,
    owner: Node,
    kind: &'static str,
) -> Result<Listed<ShownEntry>, ScopeError> {
    let per_page = crate::store::page::MAX_PER_PAGE;
    let mut all = scope_service::entries(store, actor, owner, kind, Page::new(1, per_page)).await?;
    let pages = all.total.div_ceil(per_page).min((MAX_ENTRIES as u64).div_ceil(per_page) + 1);
    for number in 2..=pages {
        let more = scope_service::entries(store, actor, owner, kind, Page::new(number, per_page)).await?;
        all.items.extend(more.items);
    }
    Ok(all)
}

/// `?find=…&find_kind=project|group`: the add-by-search box of an owner's page.
#[derive(serde::Deserialize)]
pub struct FindQuery {
    find: Option<String>,
    find_kind: Option<String>,
}

/// What a search found: the text, whether it looked for groups, and the matches the user may
/// add (or the message of a refused search).
pub(super) struct Found {
    text: String,
    groups: bool,
    matches: Result<Vec<(Node, String)>, String>,
}

/// Runs the page's search, if it asks for one: the lists' `search` (same length and character
/// rules), keeping only what the user may add ([`console::find_sources`]).
pub(super) async fn find(state: &AppState, signed: &Signed, query: &FindQuery) -> Option<Found> {
    let text = query.find.as_deref().map(str::trim).filter(|t| !t.is_empty())?.to_owned();
    let groups = query.find_kind.as_deref() == Some("group");
    let matches = match crate::http::admin::search_filter(Some(&text)) {
        Err(e) => Err(e.to_string()),
        Ok(_) => console::find_sources(&state.store, signed.session.actor, groups, text.clone()).await.map_err(|e| {
            log::error!("console source search: {e}");
            "The search is not available right now.".to_owned()
        }),
    };
    Some(Found { text, groups, matches })
}

/// The "add by searching" part of an owner's page at `page`: a GET search box, and for each
/// match an "Add" form with its scope checkboxes (posting to `{page}/-/add`).
pub(super) fn search_section(signed: &Signed, page: &str, found: Option<&Found>) -> Markup {
    let groups = found.is_some_and(|f| f.groups);
    html! {
        h3 #find-heading { "Find a project or group to add" }
        form method="get" action=(page) role="search" aria-labelledby="find-heading" {
            label for="find" { "Path contains" }
            input #find type="search" name="find" value=(found.map(|f| f.text.as_str()).unwrap_or_default());
            label for="find-kind" { "Look for" }
            select #find-kind name="find_kind" {
                option value="project" selected[!groups] { "Projects" }
                option value="group" selected[groups] { "Groups" }
            }
            button type="submit" { "Search" }
        }
        @if let Some(found) = found {
            div #find-results role="status" {
                @match &found.matches {
                    Err(message) => p.error { (message) },
                    Ok(matches) if matches.is_empty() => p.muted { "Nothing you can add matches " code { (found.text) } "." },
                    Ok(matches) => {
                        p { (matches.len()) " found" @if matches.len() >= console::MAX_FOUND { " (the first " (console::MAX_FOUND) "; narrow the search for more)" } "." }
                        ul.found {
                            @for (i, (node, path)) in matches.iter().enumerate() {
                                @let kind = match node { Node::Project(_) => "project", Node::Group(_) => "group" };
                                @let prefix = format!("found-{i}");
                                li {
                                    form method="post" action={ (page) "/-/add" } {
                                        (super::csrf_field(signed))
                                        input type="hidden" name="kind" value=(kind);
                                        input type="hidden" name="path" value=(path);
                                        fieldset {
                                            legend { "Add " (kind) " " code { (path) } }
                                            label.check for={ (prefix) "-default" } {
                                                input id={ (prefix) "-default" } type="checkbox" name="default"; "Default permissions"
                                            }
                                            br;
                                            (scope_boxes(None, &prefix))
                                        }
                                        button type="submit" aria-label={ "Add " (path) } { "Add" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The page for a refusal that means the project is not there for this user (404) or not theirs
/// to manage (403), as the API answers.
pub(super) fn refused(signed: &Signed, e: &ScopeError) -> HttpResponse {
    match e {
        ScopeError::NotFound(_) => super::error_page(StatusCode::NOT_FOUND, Some(signed), "Not found."),
        ScopeError::Forbidden(_) => super::error_page(StatusCode::FORBIDDEN, Some(signed), &e.to_string()),
        ScopeError::Store(cause) => {
            log::error!("console project page: {cause}");
            super::error_page(StatusCode::SERVICE_UNAVAILABLE, Some(signed), "The project is not available right now.")
        }
        other => super::error_page(StatusCode::UNPROCESSABLE_ENTITY, Some(signed), &other.to_string()),
    }
}

pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<FindQuery>,
) -> HttpResponse {
    let Some(signed) = session::signed(&req, &state).await else { return session::to_login() };
    match load(&state, &signed, &path).await {
        Ok(mut view) => {
            view.found = find(&state, &signed, &query).await;
            session::shown(render(&signed, &view, None, StatusCode::OK), &state, &signed)
        }
        Err(e) => refused(&signed, &e),
    }
}

/// `POST /ui/projects/{full_path}/-/{action}`: checks the session and its CSRF token before
/// reading anything else, then calls the one service function the action stands for.
pub async fn act(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let (signed, form) = match session::posted(&req, &state, &body).await {
        Ok(posted) => posted,
        Err(res) => return res,
    };
    let Some((project, action)) = path.rsplit_once("/-/") else {
        return super::error_page(StatusCode::NOT_FOUND, Some(&signed), "No such page.");
    };
    let view = match load(&state, &signed, project).await {
        Ok(view) => view,
        Err(e) => return refused(&signed, &e),
    };
    let actor = signed.session.actor;
    let (store, owner, at) = (&state.store, Node::Project(view.id), now());
    let done: Result<String, ScopeError> = match action {
        "why" => return why(&state, &signed, &view, &form).await,
        "inbound" => {
            let value = match form.one("inbound") {
                Some("on") => Some(true),
                Some("off") => Some(false),
                _ => None,
            };
            let change = ProjectChange { inbound_enabled: Some(value), ..ProjectChange::default() };
            scope_service::change_project_settings(store, actor, view.id, change, at).await.map(|_| "Saved.".to_owned())
        }
        "scopes" => match form.all("scope").map(str::parse::<Scope>).collect::<Result<ScopeSet, _>>() {
            Ok(scopes) => {
                let change = ProjectChange { job_token_scopes: Some(scopes), ..ProjectChange::default() };
                scope_service::change_project_settings(store, actor, view.id, change, at)
                    .await
                    .map(|_| "Saved the job token scopes.".to_owned())
            }
            Err(e) => Ok(format!("Not changed: {e}")),
        },
        "autopopulate" => scope_service::autopopulate(store, &state.authlog, actor, view.id, at)
            .await
            .map(|added| format!("Added {} entries from the authorization log.", added.len())),
        "remove_autopopulated" => scope_service::remove_autopopulated(store, actor, view.id, at)
            .await
            .map(|_| "Removed the entries added from the authorization log.".to_owned()),
        other => match entry_action(&state, actor, owner, other, &form, at).await {
            Some(done) => done,
            None => return super::error_page(StatusCode::NOT_FOUND, Some(&signed), "No such page."),
        },
    };
    outcome(&state, &signed, &url(&view.path, None), done)
}

/// The allowlist forms of every owner's page (`add`, `update`, `remove`); `None` for any other
/// action.
pub(super) async fn entry_action(
    state: &AppState,
    actor: Actor,
    owner: Node,
    action: &str,
    form: &Fields,
    at: i64,
) -> Option<Result<String, ScopeError>> {
    let store = &state.store;
    Some(match action {
        "add" => match (source_by_path(state, form).await, grant(form)) {
            (Ok(source), Ok(grant)) => scope_service::add_entry(store, actor, owner, source, grant, at)
                .await
                .map(|e| format!("Added {}.", e.source_path)),
            (Err(message), _) | (_, Err(message)) => Ok(message),
        },
        "update" | "remove" => match source_by_id(form) {
            None => Ok("Not changed: the entry is not known.".to_owned()),
            Some(source) if action == "remove" => {
                scope_service::remove_entry(store, actor, owner, source, at).await.map(|_| "Removed.".to_owned())
            }
            Some(source) => match grant(form) {
                Ok(grant) => scope_service::change_entry(store, actor, owner, source, grant, at)
                    .await
                    .map(|e| format!("Saved {}.", e.source_path)),
                Err(message) => Ok(message),
            },
        },
        _ => return None,
    })
}

/// Back to the page (`back`) with the outcome as a flash message; a refusal the page cannot show
/// (forbidden, a store failure) is its error page.
pub(super) fn outcome(state: &AppState, signed: &Signed, back: &str, done: Result<String, ScopeError>) -> HttpResponse {
    match done {
        Ok(message) => session::redirect_with(state, back, &message),
        Err(e @ (ScopeError::Forbidden(_) | ScopeError::Store(_))) => refused(signed, &e),
        Err(e) => session::redirect_with(state, back, &format!("Not changed: {e}")),
    }
}

/// The source an "add" form names by kind and full path; `Err` is the message to show.
pub(super) async fn source_by_path(state: &AppState, form: &Fields) -> Result<Node, String> {
    let path = form.one("path").unwrap_or_default().trim().to_owned();
    if path.is_empty() {
        return Err("Not changed: give the full path of a project or group.".into());
    }
    let group = form.one("kind") == Some("group");
    let wanted = path.clone();
    let found = state
        .store
        .read(move |c| match group {
            true => Ok(namespaces::find_group_by_path(c, &wanted)?.map(|g| Node::Group(g.id))),
            false => Ok(namespaces::find_project_by_path(c, &wanted)?.map(|p| Node::Project(p.id))),
        })
        .await;
    match found {
        Ok(Some(node)) => Ok(node),
        // Worded as the service words a source the user cannot see: the same answer either way.
        Ok(None) => Err(format!("Not changed: {} not found", if group { "group" } else { "project" })),
        Err(e) => {
            log::error!("console source lookup: {e}");
            Err("Not changed: the lookup failed; try again.".into())
        }
    }
}

pub(super) fn source_by_id(form: &Fields) -> Option<Node> {
    let id: i64 = form.one("id")?.parse().ok()?;
    match form.one("kind")? {
        "project" => Some(Node::Project(id)),
        "group" => Some(Node::Group(id)),
        _ => None,
    }
}

/// The scopes a form grants: the ticked `scope` boxes, or default permissions.
pub(super) fn grant(form: &Fields) -> Result<EntryScopes, String> {
    if form.one("default") == Some("on") {
        return Ok(None);
    }
    let scopes = form.all("scope").map(str::parse::<Scope>).collect::<Result<ScopeSet, _>>();
    match scopes {
        Ok(scopes) if scopes.is_empty() => Err("Not changed: tick at least one scope, or default permissions.".into()),
        Ok(scopes) => Ok(Some(scopes)),
        Err(e) => Err(format!("Not changed: {e}")),
    }
}

/// The "Why?" panel: a source project (or a pasted token, never stored or logged) and a scope.
async fn why(state: &AppState, signed: &Signed, view: &View, form: &Fields) -> HttpResponse {
    let scope = match form.one("scope").unwrap_or_default().parse::<Scope>() {
        Ok(scope) => scope,
        Err(e) => return render(signed, view, Some((form, Err(e.to_string()))), StatusCode::UNPROCESSABLE_ENTITY),
    };
    let actor = signed.session.actor;
    let token = form.one("token").unwrap_or_default().trim();
    let answer = if !token.is_empty() {
        let req = InspectRequest { token: token.to_owned(), target: Some((TargetRef::Id(view.id), scope)) };
        match inspect::inspect(state.deps(), actor, req, now()).await {
            Ok(found) => Ok(found
                .decision
                .map(|d| WhyAnswer { allowed: d.allowed, reason: d.reason })
                .unwrap_or(WhyAnswer { allowed: false, reason: found.reason })),
            Err(inspect::InspectError::Store(e)) => {
                log::error!("console why (token): {e}");
                Err("The answer is not available right now.".into())
            }
            Err(e) => Err(e.to_string()),
        }
    } else {
        let username = match (form.one("user").map(str::trim).filter(|u| !u.is_empty()), &signed.session.username) {
            (Some(user), _) => user.to_owned(),
            (None, Some(me)) => me.clone(),
            (None, None) => {
                return render(
                    signed,
                    view,
                    Some((form, Err("Give the user the job runs for.".into()))),
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
            }
        };
        let question = WhyQuestion {
            source: form.one("source").unwrap_or_default().to_owned(),
            username,
            ref_protected: form.one("protected") == Some("on"),
            scope,
        };
        match console::why(&state.store, actor, view.id, question).await {
            Ok(answer) => Ok(answer),
            Err(ScopeError::Store(e)) => {
                log::error!("console why: {e}");
                Err("The answer is not available right now.".into())
            }
            Err(e) => Err(e.to_string()),
        }
    };
    render(signed, view, Some((form, answer)), StatusCode::OK)
}

pub(super) fn scope_boxes(selected: Option<ScopeSet>, id_prefix: &str) -> Markup {
    html! {
        @for scope in Scope::ALL {
            @let id = format!("{id_prefix}-{}", scope.as_str());
            label.check for=(id) {
                input id=(id) type="checkbox" name="scope" value=(scope.as_str())
                    checked[selected.is_some_and(|s| s.contains(scope))];
                code { (scope.as_str()) }
                @if scope.is_elevated() { " (elevated)" }
            }
        }
    }
}

/// The elevation state up front: allowed or refused, and the level that decides it (the
/// instance or a group when refused; the project's own scopes when allowed).
fn elevation_state(s: &ProjectSettings) -> Markup {
    let own = s.job_token_scopes.intersect(ScopeSet::elevated());
    html! {
        p #elevation-state {
            "Elevated scopes ("
            (ScopeSet::elevated().names().join(", "))
            "): "
            @match &s.elevation_forbidden_by {
                Some(level) => {
                    strong.denied { "refused" } " — " (level) " forbids them"
                    @if !own.is_empty() { "; this project's " (own.names().join(", ")) " are left out of its tokens" }
                    "."
                }
                None => {
                    strong.allowed { "allowed" } " — the instance and every group above allow them; "
                    @if own.is_empty() { "this project grants none." }
                    @else { "this project grants " (own.names().join(", ")) "." }
                }
            }
        }
    }
}

fn inbound_source(settings: &ProjectSettings) -> String {
    match &settings.inbound_source {
        InboundSource::Instance => "the instance enforces job token allowlists".into(),
        InboundSource::Own => "this project's own setting".into(),
        InboundSource::Group(path) => format!("inherited from group {path}"),
        InboundSource::Default => "the default: no project or group sets it".into(),
    }
}

/// An owner's allowlist entries of one kind, each with its scope checkboxes, save and remove;
/// `page` is the owner's console page (actions post to `{page}/-/update` and `{page}/-/remove`).
pub(super) fn entries_table(signed: &Signed, page: &str, kind: &str, listed: &Listed<ShownEntry>) -> Markup {
    html! {
        @if listed.items.is_empty() {
            p.muted { "No " (kind) " entries." }
        } @else {
            div.table { table {
                thead { tr { th scope="col" { "Source" } th scope="col" { "May use" } th scope="col" { "Remove" } } }
                tbody {
                    @for shown in &listed.items {
                        @let id = match shown.entry.source { Node::Project(id) | Node::Group(id) => id };
                        @let prefix = format!("e-{kind}-{id}");
                        tr {
                            td {
                                code { (shown.source_path) }
                                @if shown.entry.autopopulated { br; span.muted { "added from the authorization log" } }
                            }
                            td {
                                form method="post" action={ (page) "/-/update" } {
                                    (super::csrf_field(signed))
                                    input type="hidden" name="kind" value=(kind);
                                    input type="hidden" name="id" value=(id);
                                    fieldset {
                                        legend { "Scopes for " (shown.source_path) }
                                        label.check for={ (prefix) "-default" } {
                                            input id={ (prefix) "-default" } type="checkbox" name="default" checked[shown.entry.scopes.is_none()];
                                            "Default permissions"
                                        }
                                        br;
                                        (scope_boxes(shown.entry.scopes, &prefix))
                                    }
                                    button.secondary type="submit" { "Save" }
                                }
                            }
                            td {
                                form method="post" action={ (page) "/-/remove" } {
                                    (super::csrf_field(signed))
                                    input type="hidden" name="kind" value=(kind);
                                    input type="hidden" name="id" value=(id);
                                    button.danger type="submit" aria-label={ "Remove " (shown.source_path) } { "Remove" }
                                }
                            }
                        }
                    }
                }
            } }
        }
    }
}

/// The "Why?" panel's question as asked (the form keeps it, except a pasted token) and its answer.
type Asked<'a> = Option<(&'a Fields, Result<WhyAnswer, String>)>;

fn render(signed: &Signed, view: &View, why: Asked<'_>, status: StatusCode) -> HttpResponse {
    let s = &view.settings;
    let asked = |name: &str| why.as_ref().and_then(|(form, _)| form.one(name)).map(str::to_owned);
    let me = signed.session.username.clone().unwrap_or_default();
    let body = html! {
        (super::flash(signed))
        h1 { "Job token permissions: " code { (view.path) } }

        section aria-labelledby="inbound" {
            h2 #inbound { "Limit access to this project" }
            p {
                "Effective: "
                @if s.inbound_enabled { strong { "on" } " — only allowlisted projects and groups may use job tokens here" }
                @else { strong { "off" } " — any project's jobs may use job tokens here" }
                " (" (inbound_source(s)) ")."
            }
            form method="post" action=(url(&view.path, Some("inbound"))) {
                (super::csrf_field(signed))
                fieldset {
                    legend { "This project's setting" }
                    label.check for="inbound-inherit" { input #inbound-inherit type="radio" name="inbound" value="inherit" checked[s.inbound_setting.is_none()]; "Inherit" }
                    label.check for="inbound-on" { input #inbound-on type="radio" name="inbound" value="on" checked[s.inbound_setting == Some(true)]; "On" }
                    label.check for="inbound-off" { input #inbound-off type="radio" name="inbound" value="off" checked[s.inbound_setting == Some(false)]; "Off" }
                }
                button type="submit" { "Save setting" }
            }
        }

        section aria-labelledby="allowlist" {
            h2 #allowlist { "Allowlist" }
            p.counter { "Projects: " (view.projects.total) "/" (MAX_ENTRIES) " · Groups: " (view.groups.total) "/" (MAX_ENTRIES) }
            h3 { "Projects" }
            (entries_table(signed, &url(&view.path, None), "project", &view.projects))
            h3 { "Groups" }
            (entries_table(signed, &url(&view.path, None), "group", &view.groups))
            (search_section(signed, &url(&view.path, None), view.found.as_ref()))
            h3 { "Add a project or group by its full path" }
            form method="post" action=(url(&view.path, Some("add"))) {
                (super::csrf_field(signed))
                label for="add-kind" { "Kind" }
                select #add-kind name="kind" { option value="project" { "Project" } option value="group" { "Group" } }
                label for="add-path" { "Full path" }
                input #add-path type="text" name="path" placeholder="group/project" required;
                fieldset {
                    legend { "May use" }
                    label.check for="add-default" { input #add-default type="checkbox" name="default"; "Default permissions" }
                    br;
                    (scope_boxes(None, "add"))
                }
                button type="submit" { "Add" }
            }
        }

        section aria-labelledby="log" {
            h2 #log { "Authorization log" }
            p { "Projects whose jobs reached this project, with the scopes only an allowlist entry grants." }
            @if view.log.items.is_empty() { p.muted { "No job of another project has used a job token here yet." } }
            @else {
                div.table { table {
                    thead { tr { th scope="col" { "Source project" } th scope="col" { "Scopes used" } th scope="col" { "Times" } th scope="col" { "Last" } } }
                    tbody {
                        @for a in &view.log.items {
                            tr {
                                td { code { (a.source_project_path) } }
                                td { (a.scopes.names().join(", ")) }
                                td { (a.count) }
                                td { (crate::domain::time::rfc3339(a.last_authorized_at)) }
                            }
                        }
                    }
                } }
            }
            form.inline method="post" action=(url(&view.path, Some("autopopulate"))) {
                (super::csrf_field(signed))
                button type="submit" { "Add all from the log" }
            }
            " "
            form.inline method="post" action=(url(&view.path, Some("remove_autopopulated"))) {
                (super::csrf_field(signed))
                button.secondary type="submit" { "Remove autopopulated entries" }
            }
        }

        section aria-labelledby="own-scopes" {
            h2 #own-scopes { "This project's job token scopes" }
            p { "What this project's own jobs may do with their job token. Elevated scopes need elevation to be allowed by the instance and every group above." }
            (elevation_state(s))
            form method="post" action=(url(&view.path, Some("scopes"))) {
                (super::csrf_field(signed))
                fieldset {
                    legend { "Scopes of this project's job tokens" }
                    (scope_boxes(Some(s.job_token_scopes), "own"))
                }
                button type="submit" { "Save scopes" }
            }
        }

        section aria-labelledby="inherited" {
            h2 #inherited { "Inherited from groups above" }
            @if view.inherited.iter().all(|(_, items, hidden)| items.is_empty() && *hidden == 0) {
                p.muted { "No group above this project has allowlist entries." }
            }
            @for (group, items, hidden) in &view.inherited {
                @if !items.is_empty() || *hidden > 0 {
                    h3 { "Group " a href=(super::groups::url(group, None)) { code { (group) } } " (read-only here; edit it on the group's page)" }
                    ul {
                        @for shown in items {
                            li {
                                code { (shown.source_path) } ": "
                                @match shown.entry.scopes {
                                    None => "default permissions",
                                    Some(scopes) => (scopes.names().join(", ")),
                                }
                            }
                        }
                        @if *hidden > 0 { li.muted { (hidden) " more you cannot see" } }
                    }
                }
            }
        }

        section aria-labelledby="outbound" {
            h2 #outbound { "Outbound" }
            p { "Outbound limits are " @if s.outbound_enabled { strong { "on" } } @else { strong { "off" } } "." }
            @if view.outbound.items.is_empty() { p.muted { "No outbound entries." } }
            @else {
                ul { @for o in &view.outbound.items { li { code { (o.target_path) } ": " (o.entry.scopes.names().join(", ")) } } }
            }
        }

        section aria-labelledby="why" {
            h2 #why { "Why?" }
            p { "Would a job of another project be allowed to use a scope on " code { (view.path) } "?" }
            form method="post" action=(url(&view.path, Some("why"))) {
                (super::csrf_field(signed))
                label for="why-source" { "Source project (full path)" }
                input #why-source type="text" name="source" placeholder="group/project" value=(asked("source").unwrap_or_default());
                label for="why-user" { "User the job runs for" }
                input #why-user type="text" name="user" value=(asked("user").unwrap_or(me));
                label.check for="why-protected" { input #why-protected type="checkbox" name="protected" checked[why.is_none() || asked("protected").is_some()]; "Protected branch or tag" }
                label for="why-token" { "…or paste a job token instead (never stored)" }
                textarea #why-token name="token" autocomplete="off" spellcheck="false" {}
                label for="why-scope" { "Scope" }
                select #why-scope name="scope" {
                    @for scope in Scope::ALL {
                        option value=(scope.as_str()) selected[asked("scope").as_deref() == Some(scope.as_str())] { (scope.as_str()) }
                    }
                }
                button type="submit" { "Ask" }
            }
            @if let Some((_, answer)) = &why {
                div #why-answer role="status" {
                    @match answer {
                        Ok(a) if a.allowed => { p.allowed { "Allowed" } p { (a.reason) } }
                        Ok(a) => { p.denied { "Denied" } p { (a.reason) } }
                        Err(message) => { p.error { (message) } }
                    }
                }
            }
        }
    };
    super::page(status, &view.path, Some(signed), body)
}
