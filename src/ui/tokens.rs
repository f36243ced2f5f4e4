//! `/ui/tokens`: the token inspector. The pasted token goes to the inspect service (the same as
//! `POST /api/v1/tokens/inspect`) and is never stored, logged or echoed back.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};

use super::session::{self, Signed};
use crate::app::AppState;
use crate::domain::Scope;
use crate::service::decision::TargetRef;
use crate::service::inspect::{self, InspectError, InspectRequest, Inspection};
use crate::service::now;

fn render(signed: &Signed, status: StatusCode, result: Option<Result<Inspection, String>>) -> HttpResponse {
    let body = html! {
        h1 { "Token inspector" }
        p { "Paste a job token to see its header, its claims and why it is (or is not) accepted. The token is not stored." }
        form method="post" action="/ui/tokens" {
            (super::csrf_field(signed))
            label for="token" { "Job token" }
            textarea #token name="token" autocomplete="off" spellcheck="false" required {}
            label for="project" { "Target project (full path, optional)" }
            input #project type="text" name="project" placeholder="group/project";
            label for="scope" { "Scope on the target" }
            select #scope name="scope" {
                option value="" { "(none)" }
                @for scope in Scope::ALL { option value=(scope.as_str()) { (scope.as_str()) } }
            }
            button type="submit" { "Inspect" }
        }
        @match &result {
            None => {}
            Some(Err(message)) => { p.error role="alert" { (message) } }
            Some(Ok(found)) => { (inspection(found)) }
        }
    };
    super::page(status, "Token inspector", Some(signed), body)
}

fn pretty(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

fn inspection(found: &Inspection) -> Markup {
    html! {
        section #inspection aria-labelledby="result" {
            h2 #result { "Result" }
            p {
                "State: " strong { (pretty(&found.state).trim_matches('"')) }
                @if !found.verified { " (not verified: the header and claims are only what the token says)" }
            }
            p { (found.reason) }
            @if let Some(d) = &found.decision {
                p {
                    @if d.allowed { span.allowed { "Allowed" } } @else { span.denied { "Denied" } }
                    ": " (d.reason)
                }
            }
            h3 { "Header" }
            pre { code { (pretty(&found.header)) } }
            h3 { "Claims" }
            pre { code { (pretty(&found.claims)) } }
            @if !found.lineage.is_empty() {
                h3 { "Lineage" }
                ul { @for t in &found.lineage { li { code { (t.jti) } " (" (t.relation) "), issued " (t.issued_at) } } }
            }
        }
    }
}

pub async fn show(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let Some(signed) = session::signed(&req, &state).await else { return session::to_login() };
    render(&signed, StatusCode::OK, None)
}

pub async fn inspect(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    let (signed, form) = match session::posted(&req, &state, &body).await {
        Ok(posted) => posted,
        Err(res) => return res,
    };
    let token = form.one("token").unwrap_or_default().trim().to_owned();
    let project = form.one("project").map(str::trim).filter(|p| !p.is_empty());
    let scope = form.one("scope").filter(|s| !s.is_empty());
    let target = match (project, scope.map(str::parse::<Scope>)) {
        (Some(project), Some(Ok(scope))) => Some((TargetRef::Path(project.to_owned()), scope)),
        (None, None) => None,
        (_, Some(Err(e))) => return render(&signed, StatusCode::UNPROCESSABLE_ENTITY, Some(Err(e.to_string()))),
        _ => {
            let message = "Give a target project and a scope together, or neither.".to_owned();
            return render(&signed, StatusCode::UNPROCESSABLE_ENTITY, Some(Err(message)));
        }
    };
    match inspect::inspect(state.deps(), signed.session.actor, InspectRequest { token, target }, now()).await {
        Ok(found) => render(&signed, StatusCode::OK, Some(Ok(found))),
        Err(InspectError::Store(e)) => {
            log::error!("console token inspector: {e}");
            render(
                &signed,
                StatusCode::SERVICE_UNAVAILABLE,
                Some(Err("The inspector is not available right now.".into())),
            )
        }
        Err(e @ InspectError::Malformed(_)) => render(&signed, StatusCode::BAD_REQUEST, Some(Err(e.to_string()))),
        Err(e @ InspectError::NotFound) => render(&signed, StatusCode::NOT_FOUND, Some(Err(e.to_string()))),
        Err(e) => render(&signed, StatusCode::FORBIDDEN, Some(Err(e.to_string()))),
    }
}
