//! `/ui/groups/{full_path}`: a group's job token settings and allowlist, which every project and
//! subgroup below it inherits. Same rules and services as the API's
//! `/api/v1/groups/{id}/job_token_scope…`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::html;

use super::project::{
    all_entries, entries_table, entry_action, find, outcome, refused, scope_boxes, search_section, FindQuery, Found,
};
use super::session::{self, Signed};
use crate::app::AppState;
use crate::domain::GroupId;
use crate::service::job_token_scope::{self as scope_service, GroupChange, GroupSettings, ScopeError, ShownEntry};
use crate::service::now;
use crate::store::allowlist::{Node, MAX_ENTRIES};
use crate::store::{namespaces, Listed};

/// The console URL of a group page, or of one of its actions.
pub fn url(full_path: &str, action: Option<&str>) -> String {
    super::project::url(full_path, action).replacen("/ui/projects/", "/ui/groups/", 1)
}

struct View {
    id: GroupId,
    path: String,
    settings: GroupSettings,
    projects: Listed<ShownEntry>,
    groups: Listed<ShownEntry>,
    found: Option<Found>,
}

async fn load(state: &AppState, signed: &Signed, path: &str) -> Result<View, ScopeError> {
    let actor = signed.session.actor;
    let wanted = path.to_owned();
    let found = state.store.read(move |c| namespaces::find_group_by_path(c, &wanted)).await?;
    let group = found.ok_or(ScopeError::NotFound(Node::Group(0)))?;
    let (id, owner, store) = (group.id, Node::Group(group.id), &state.store);
    Ok(View {
        id,
        path: group.full_path,
        settings: scope_service::group_settings_of(store, actor, id).await?,
        projects: all_entries(store, actor, owner, "project").await?,
        groups: all_entries(store, actor, owner, "group").await?,
        found: None,
    })
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
            session::shown(render(&signed, &view), &state, &signed)
        }
        Err(e) => refused(&signed, &e),
    }
}

fn tri(value: Option<&str>) -> Option<bool> {
    match value {
        Some("on") => Some(true),
        Some("off") => Some(false),
        _ => None,
    }
}

/// `POST /ui/groups/{full_path}/-/{action}`: session and CSRF first, then one service call.
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
    let Some((group, action)) = path.rsplit_once("/-/") else {
        return super::error_page(StatusCode::NOT_FOUND, Some(&signed), "No such page.");
    };
    let view = match load(&state, &signed, group).await {
        Ok(view) => view,
        Err(e) => return refused(&signed, &e),
    };
    let (actor, store, owner, at) = (signed.session.actor, &state.store, Node::Group(view.id), now());
    let done: Result<String, ScopeError> = match action {
        "settings" => {
            let change = GroupChange {
                inbound_enabled: Some(tri(form.one("inbound"))),
                job_token_elevation_allowed: Some(tri(form.one("elevation"))),
                id_token_sub_claim_components: None,
            };
            scope_service::change_group_settings(store, actor, view.id, change, at).await.map(|_| "Saved.".to_owned())
        }
        other => match entry_action(&state, actor, owner, other, &form, at).await {
            Some(done) => done,
            None => return super::error_page(StatusCode::NOT_FOUND, Some(&signed), "No such page."),
        },
    };
    outcome(&state, &signed, &url(&view.path, None), done)
}

fn render(signed: &Signed, view: &View) -> HttpResponse {
    let s = &view.settings;
    let page = url(&view.path, None);
    let radios = |name: &str, value: Option<bool>, labels: [&str; 3]| {
        html! {
            @for (choice, label, checked) in [("inherit", labels[0], value.is_none()), ("on", labels[1], value == Some(true)), ("off", labels[2], value == Some(false))] {
                @let id = format!("{name}-{choice}");
                label.check for=(id) { input id=(id) type="radio" name=(name) value=(choice) checked[checked]; (label) }
            }
        }
    };
    let body = html! {
        (super::flash(signed))
        h1 { "Job token permissions for group " code { (view.path) } }
        p { "Every project and subgroup below this group inherits these settings and this allowlist." }
        section aria-labelledby="settings" {
            h2 #settings { "Settings" }
            p { "Limit access (effective): " strong { @if s.inbound_enabled { "on" } @else { "off" } } }
            p { "Elevated job token scopes (effective): " strong { @if s.job_token_elevation_effective { "allowed" } @else { "forbidden" } } }
            form method="post" action={ (page) "/-/settings" } {
                (super::csrf_field(signed))
                fieldset { legend { "Limit access to projects in this group" } (radios("inbound", s.inbound_setting, ["Inherit", "On", "Off"])) }
                fieldset { legend { "Allow elevated job token scopes" } (radios("elevation", s.job_token_elevation_allowed, ["Inherit", "Allowed", "Forbidden"])) }
                button type="submit" { "Save settings" }
            }
        }
        section aria-labelledby="allowlist" {
            h2 #allowlist { "Allowlist" }
            p.counter { "Projects: " (view.projects.total) "/" (MAX_ENTRIES) " · Groups: " (view.groups.total) "/" (MAX_ENTRIES) }
            h3 { "Projects" }
            (entries_table(signed, &page, "project", &view.projects))
            h3 { "Groups" }
            (entries_table(signed, &page, "group", &view.groups))
            (search_section(signed, &page, view.found.as_ref()))
            h3 { "Add a project or group by its full path" }
            form method="post" action={ (page) "/-/add" } {
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
    };
    super::page(StatusCode::OK, &view.path, Some(signed), body)
}
