//! `/ui/`: the projects the signed-in user can manage (every project for the admin), paged, and
//! a box to open any project by path.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::html;
use serde::Deserialize;

use super::session;
use crate::app::AppState;
use crate::service::editor::Actor;
use crate::store::namespaces::{self, ProjectFilter};
use crate::store::Page;

#[derive(Deserialize)]
pub struct HomeQuery {
    /// Open this project (a full path).
    project: Option<String>,
    page: Option<u64>,
}

const PER_PAGE: u64 = 50;

pub async fn show(req: HttpRequest, state: web::Data<AppState>, query: web::Query<HomeQuery>) -> HttpResponse {
    let Some(signed) = session::signed(&req, &state).await else { return session::to_login() };
    if let Some(path) = query.project.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        return super::see_other(&super::project::url(path, None));
    }
    let number = query.page.unwrap_or(1).max(1);
    let page = Page::new(number, PER_PAGE);
    let actor = signed.session.actor;
    let listed = state
        .store
        .read(move |c| match actor {
            Actor::Admin => Ok((
                namespaces::list_projects(c, &ProjectFilter::default(), page)?,
                namespaces::list_groups(c, None, page)?,
            )),
            Actor::User(user) => Ok((
                namespaces::list_projects_managed_by(c, user, page)?,
                namespaces::list_groups_managed_by(c, user, page)?,
            )),
        })
        .await;
    let (listed, groups) = match listed {
        Ok(listed) => listed,
        Err(e) => {
            log::error!("console home: {e}");
            return super::error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                Some(&signed),
                "The project list is not available.",
            );
        }
    };
    let pages = listed.total.max(groups.total).div_ceil(PER_PAGE).max(1);
    let heading = match actor {
        Actor::Admin => "All projects and groups",
        Actor::User(_) => "Projects and groups you maintain",
    };
    let body = html! {
        (super::flash(&signed))
        h1 { (heading) }
        h2 { "Projects" }
        form method="get" action="/ui/" {
            label for="project" { "Open a project by its full path" }
            input #project type="text" name="project" placeholder="group/project";
            button type="submit" { "Open" }
        }
        @if listed.items.is_empty() {
            p { "No projects here yet." }
        } @else {
            ul.projects {
                @for p in &listed.items {
                    li { a href=(super::project::url(&p.path_with_namespace, None)) { (p.path_with_namespace) } }
                }
            }
        }
        h2 { "Groups" }
        @if groups.items.is_empty() {
            p { "No groups here." }
        } @else {
            ul.groups {
                @for g in &groups.items {
                    li { a href=(super::groups::url(&g.full_path, None)) { (g.full_path) } }
                }
            }
        }
        @if listed.total > 0 || groups.total > 0 {
            p.muted { "Page " (number) " of " (pages) " (" (listed.total) " projects, " (groups.total) " groups)" }
            nav aria-label="Pages" {
                @if number > 1 { a href={ "/ui/?page=" (number - 1) } { "Previous" } " " }
                @if number < pages { a href={ "/ui/?page=" (number + 1) } { "Next" } }
            }
        }
    };
    session::shown(super::page(StatusCode::OK, heading, Some(&signed), body), &state, &signed)
}

/// `/ui` without the slash.
pub async fn root() -> HttpResponse {
    super::see_other("/ui/")
}
