//! `/oauth/*`: token, introspection (RFC 7662), revocation (RFC 7009).

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::access::{self, Who};
use super::auth::{authenticate_client, client_credentials, is_admin};
use super::form::Form;
use crate::app::AppState;
use crate::domain::ScopeSet;
use crate::error::{self, OAuthCode, OAuthError};
use crate::policy::MintRefusal;
use crate::service::exchange::ExchangeError;
use crate::service::mint::{IssueError, MintError};
use crate::service::tokens::{self, Caller, TokenRequestError};
use crate::service::{exchange, mint, now};
use crate::token::details;

const CLIENT_CREDENTIALS: &str = "client_credentials";
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// A JSON response that must never be cached (RFC 6749 §5.1).
fn no_store(body: &impl serde::Serialize) -> HttpResponse {
    error::no_store(&mut HttpResponse::Ok()).json(body)
}

/// An active token's RFC 7662 answer: the introspection members, then every claim.
#[derive(serde::Serialize)]
struct Introspection<'a> {
    active: bool,
    token_type: &'static str,
    username: &'a str,
    #[serde(flatten)]
    claims: &'a crate::token::Claims,
}

pub async fn token(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    let form = Form::read(&req, payload).await?;
    match form.required("grant_type")? {
        CLIENT_CREDENTIALS => {
            let creds = client_credentials(&req, &form)?.ok_or_else(OAuthError::invalid_client)?;
            let client_id = creds.client_id.clone();
            let request = parse_mint_request(&form)?;
            let minted = mint::mint(state.deps(), creds, request, now()).await?;
            access::record(&req, Who::Client(client_id));
            Ok(no_store(&token_response(&minted, None)))
        }
        TOKEN_EXCHANGE => {
            // The subject token is the credential; client credentials are optional, but ones
            // that are presented must be valid (RFC 6749 §2.3).
            if let Some(creds) = client_credentials(&req, &form)? {
                let client_id = creds.client_id.clone();
                authenticate_client(&state.store, &state.metrics, creds)
                    .await?
                    .ok_or_else(OAuthError::invalid_client)?;
                access::record(&req, Who::Client(client_id));
            }
            if form.one("requested_token_type")? == Some(exchange::ID_TOKEN_TYPE) {
                let request = parse_id_token_request(&form)?;
                let issued = exchange::id_token(state.deps(), request, now()).await?;
                return Ok(no_store(&id_token_response(&issued)));
            }
            let request = parse_exchange_request(&form)?;
            let exchanged = exchange::exchange(state.deps(), request, now()).await?;
            Ok(no_store(&token_response(&exchanged, Some(exchange::ACCESS_TOKEN_TYPE))))
        }
        other => Err(OAuthError::new(
            OAuthCode::UnsupportedGrantType,
            format!("grant_type {other} is not supported; use client_credentials"),
        )),
    }
}

/// RFC 6749 §5.1 (and RFC 8693 §2.2.1 `issued_token_type`), with RFC 9396 details when granted.
fn token_response(token: &mint::Minted, issued_token_type: Option<&str>) -> Value {
    let mut body = json!({
        "access_token": token.access_token,
        "token_type": "Bearer",
        "expires_in": token.expires_in,
        "scope": token.scope.to_space_separated(),
    });
    if let Some(t) = issued_token_type {
        body["issued_token_type"] = json!(t);
    }
    if !token.details.is_empty() {
        body["authorization_details"] = json!(token.details);
    }
    body
}

/// RFC 8693 §2.2.1 for an ID token: not an access token, so `token_type` is `N_A`.
fn id_token_response(issued: &exchange::IssuedIdToken) -> Value {
    json!({
        "access_token": issued.id_token,
        "issued_token_type": exchange::ID_TOKEN_TYPE,
        "token_type": "N_A",
        "expires_in": issued.expires_in,
    })
}

/// An exchange for an ID token: a job token subject and at least one `audience`; scope and
/// authorization details do not apply to it.
fn parse_id_token_request(form: &Form) -> Result<exchange::IdTokenExchange, OAuthError> {
    let subject_token = form.required("subject_token")?.to_owned();
    match form.required("subject_token_type")? {
        exchange::ACCESS_TOKEN_TYPE | exchange::JWT_TOKEN_TYPE => {}
        other => return Err(OAuthError::invalid_request(format!("subject_token_type {other} is not supported"))),
    }
    for absent in ["actor_token", "scope", "authorization_details"] {
        if form.one(absent)?.is_some() {
            return Err(OAuthError::invalid_request(format!("{absent} does not apply to an ID token")));
        }
    }
    let audience = audiences(form)?;
    if audience.is_empty() {
        return Err(OAuthError::invalid_request(format!(
            "audience is required for {}: the ID token's consumer, such as sts.amazonaws.com",
            exchange::ID_TOKEN_TYPE
        )));
    }
    Ok(exchange::IdTokenExchange { subject_token, audience })
}

fn parse_mint_request(form: &Form) -> Result<mint::MintRequest, OAuthError> {
    let job_id = form
        .required("job_id")?
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| OAuthError::invalid_request("job_id must be a positive integer"))?;
    Ok(mint::MintRequest {
        job_id,
        requested: requested_scope(form)?,
        audience: audiences(form)?,
        details: authorization_details(form)?.unwrap_or_default(),
    })
}

/// RFC 8693 §2.1. The subject token is the credential: no client authentication is needed.
fn parse_exchange_request(form: &Form) -> Result<exchange::ExchangeRequest, OAuthError> {
    let subject_token = form.required("subject_token")?.to_owned();
    match form.required("subject_token_type")? {
        exchange::ACCESS_TOKEN_TYPE | exchange::JWT_TOKEN_TYPE => {}
        other => return Err(OAuthError::invalid_request(format!("subject_token_type {other} is not supported"))),
    }
    if let Some(other) = form.one("requested_token_type")?.filter(|t| *t != exchange::ACCESS_TOKEN_TYPE) {
        return Err(OAuthError::invalid_request(format!(
            "requested_token_type {other} is not supported; {} and {} are issued",
            exchange::ACCESS_TOKEN_TYPE,
            exchange::ID_TOKEN_TYPE
        )));
    }
    if form.one("actor_token")?.is_some() {
        return Err(OAuthError::invalid_request("actor_token is not supported"));
    }
    Ok(exchange::ExchangeRequest {
        subject_token,
        scope: requested_scope(form)?,
        audience: audiences(form)?,
        details: authorization_details(form)?,
    })
}

/// The optional `scope` parameter; unknown names are `invalid_scope` (RFC 6749 §3.3).
fn requested_scope(form: &Form) -> Result<Option<ScopeSet>, OAuthError> {
    form.one("scope")?
        .map(ScopeSet::parse_space_separated)
        .transpose()
        .map_err(|e| OAuthError::new(OAuthCode::InvalidScope, e.to_string()))
}

/// The optional RFC 9396 `authorization_details` parameter.
fn authorization_details(form: &Form) -> Result<Option<Vec<details::Requested>>, OAuthError> {
    form.one("authorization_details")?.map(details::parse).transpose().map_err(OAuthError::invalid_request)
}

/// `audience` (RFC 8693) and `resource` (RFC 8707) values, in order, without duplicates.
fn audiences(form: &Form) -> Result<Vec<String>, OAuthError> {
    let mut out: Vec<String> = Vec::new();
    for resource in form.all("resource") {
        if !crate::domain::is_absolute_uri(resource) {
            return Err(OAuthError::new(
                OAuthCode::InvalidTarget,
                "resource must be an absolute URI without a fragment",
            ));
        }
    }
    for value in form.all("audience").into_iter().chain(form.all("resource")) {
        if value.len() > 512 {
            return Err(OAuthError::invalid_request("audience and resource values are limited to 512 characters"));
        }
        if !out.iter().any(|v| v == value) {
            out.push(value.to_owned());
        }
    }
    if out.len() > 16 {
        return Err(OAuthError::invalid_request("at most 16 audience and resource values are allowed"));
    }
    Ok(out)
}

async fn authenticate_caller(state: &AppState, req: &HttpRequest, form: &Form) -> Result<Caller, OAuthError> {
    if is_admin(req, state) {
        access::record(req, Who::Admin);
        return Ok(Caller::Admin);
    }
    let creds = client_credentials(req, form)?.ok_or_else(OAuthError::invalid_client)?;
    let client_id = creds.client_id.clone();
    let client =
        authenticate_client(&state.store, &state.metrics, creds).await?.ok_or_else(OAuthError::invalid_client)?;
    access::record(req, Who::Client(client_id));
    Ok(Caller::Client(client))
}

/// The one mapping of minting refusals to RFC 6749 errors.
impl From<MintError> for OAuthError {
    fn from(e: MintError) -> Self {
        match e {
            MintError::InvalidClient => OAuthError::invalid_client(),
            // Unknown jobs and jobs of projects the runner does not serve look the same to the
            // runner, so a runner cannot probe which job ids exist elsewhere.
            MintError::Refused { refusal: MintRefusal::NotServed, job_id } => OAuthError::new(
                OAuthCode::InvalidGrant,
                format!("job {job_id} does not exist or is not served by this runner"),
            ),
            MintError::Refused { refusal, .. } => OAuthError::invalid_grant(refusal.to_string()),
            MintError::Issue(e) => e.into(),
            MintError::Store(e) => e.into(),
        }
    }
}

impl From<IssueError> for OAuthError {
    fn from(e: IssueError) -> Self {
        match e {
            IssueError::TooLarge(sentence) => OAuthError::invalid_request(sentence),
            IssueError::Key(cause) => OAuthError::server_error(cause),
            IssueError::Store(e) => e.into(),
        }
    }
}

/// The one mapping of token exchange refusals to RFC 6749/8693 errors.
impl From<ExchangeError> for OAuthError {
    fn from(e: ExchangeError) -> Self {
        match e {
            inactive @ ExchangeError::Inactive(_) => OAuthError::invalid_grant(inactive.to_string()),
            narrowing @ ExchangeError::AudienceNotHeld(_) => {
                OAuthError::new(OAuthCode::InvalidTarget, narrowing.to_string())
            }
            no_key @ (ExchangeError::NoIdTokenKey | ExchangeError::IdTokenKey(_)) => {
                OAuthError::server_error(no_key.to_string())
            }
            ExchangeError::Issue(e) => e.into(),
            ExchangeError::Store(e) => e.into(),
        }
    }
}

/// The one mapping of introspection and revocation refusals to RFC 6749 errors.
impl From<TokenRequestError> for OAuthError {
    fn from(e: TokenRequestError) -> Self {
        match e {
            TokenRequestError::Store(e) => e.into(),
            refused => OAuthError::new(OAuthCode::UnauthorizedClient, refused.to_string()),
        }
    }
}

pub async fn introspect(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    let form = Form::read(&req, payload).await?;
    let audience = tokens::introspection_audience(&authenticate_caller(&state, &req, &form).await?)?;
    let token = form.required("token")?;
    let asker = state.deps().asker(&audience);
    let Some(claims) = tokens::introspect(&state.store, &state.keys, &state.metrics, token, asker, now()).await? else {
        return Ok(no_store(&json!({ "active": false })));
    };
    Ok(no_store(&Introspection { active: true, token_type: "Bearer", username: &claims.user_login, claims: &claims }))
}

pub async fn revoke(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    let form = Form::read(&req, payload).await?;
    let caller = authenticate_caller(&state, &req, &form).await?;
    tokens::may_revoke(&caller)?;
    let token = form.required("token")?;
    // RFC 7009 §2.2: an invalid or unknown token is answered with 200 all the same.
    tokens::revoke(&state.store, &state.keys, &caller, token, now()).await?;
    Ok(no_store_empty())
}

fn no_store_empty() -> HttpResponse {
    error::no_store(&mut HttpResponse::Ok()).finish()
}
