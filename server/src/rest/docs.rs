//! The API's description: the OpenAPI 3.1 document (`/api/v1/openapi.json`), generated from
//! the handlers' `#[utoipa::path]` annotations and the types they send, and a page that reads
//! it for people (`/api/v1/docs`), rendered on the server with no script.

use super::{ErrorBody, ErrorDetail};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;
use std::sync::Arc;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tessera API",
        description = "Programs call Tessera with a bearer credential: a person's access token from `POST /api/v1/auth/token`, \
                       or an organization's API key (`tsk_…`, made under the organization's API keys). Cookies are ignored. \
                       Every error is `{\"error\": {\"status\", \"message\", \"field\"}}`. Responses that spent a request budget \
                       carry `RateLimit-Policy` and `RateLimit` headers; a 429 also says `Retry-After`."
    ),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody, ErrorDetail)),
    tags(
        (name = "auth", description = "Signing in for an access token, refreshing it, signing out"),
        (name = "projects", description = "An organization's projects"),
        (name = "documents", description = "The documents inside a project"),
        (name = "access", description = "Who may see and change a project: restricting it, sharing it with members and groups"),
        (name = "members", description = "An organization's team"),
        (name = "audit", description = "An organization's audit log, for security tools (SIEM) to pull"),
    )
)]
pub struct ApiDoc;

/// The `bearer` security scheme every operation but signing in refers to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An access token (a JWT from /api/v1/auth/token) or an organization API key (tsk_…)"))
                    .build(),
            ),
        );
    }
}

/// `/api/v1/openapi.json` and `/api/v1/docs` for `api`.
pub fn router<S: Clone + Send + Sync + 'static>(api: utoipa::openapi::OpenApi) -> Router<S> {
    let document = Arc::new(serde_json::to_value(&api).unwrap_or(Value::Null));
    let page = Arc::new(render(&document));
    Router::new()
        .route("/api/v1/openapi.json", get(move || async move { Json(document.as_ref().clone()) }))
        .route("/api/v1/docs", get(move || async move { Html(page.as_ref().clone()).into_response() }))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The name of a `$ref`'d schema, or a short description of an inline one.
fn schema_name(schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        return reference.rsplit('/').next().unwrap_or(reference).to_string();
    }
    // OpenAPI 3.1 writes an optional value's type as a list ending in "null".
    let kind = schema["type"].as_str().or_else(|| schema["type"].as_array()?.iter().filter_map(Value::as_str).find(|t| *t != "null"));
    let optional = schema["type"].as_array().is_some_and(|types| types.iter().any(|t| t == "null"));
    let kind = match kind {
        Some("array") => format!("list of {}", schema_name(&schema["items"])),
        Some(other) => other.to_string(),
        None if schema["oneOf"].is_array() || schema["anyOf"].is_array() => "one of several".to_string(),
        None => "value".to_string(),
    };
    if optional {
        format!("{kind} or null")
    } else {
        kind
    }
}

/// The document as a page: each operation with its parameters, body and answers, then the
/// schemas with their fields.
fn render(document: &Value) -> String {
    let mut html = String::new();
    let info = &document["info"];
    html.push_str(&format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} reference</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><link rel=\"stylesheet\" href=\"/pkg/tessera.css\"></head>\
         <body><main class=\"docs\"><h1>{title}</h1><p>{description}</p><p><a href=\"/api/v1/openapi.json\">OpenAPI 3.1 document</a></p>",
        title = escape(info["title"].as_str().unwrap_or("API")),
        description = escape(info["description"].as_str().unwrap_or_default()),
    ));
    let empty = serde_json::Map::new();
    for (path, item) in document["paths"].as_object().unwrap_or(&empty) {
        for method in ["get", "post", "put", "patch", "delete"] {
            let operation = &item[method];
            if operation.is_null() {
                continue;
            }
            html.push_str(&format!(
                "<section class=\"card\" id=\"{id}\"><h2><code>{method} {path}</code></h2><p>{summary}</p>",
                id = escape(operation["operationId"].as_str().unwrap_or(method)),
                method = method.to_uppercase(),
                path = escape(path),
                summary = escape(operation["description"].as_str().or(operation["summary"].as_str()).unwrap_or_default()),
            ));
            if operation["security"].as_array().is_some_and(|s| !s.is_empty()) {
                html.push_str("<p>Needs <code>Authorization: Bearer …</code>.</p>");
            }
            if let Some(parameters) = operation["parameters"].as_array().filter(|p| !p.is_empty()) {
                html.push_str("<h3>Parameters</h3><ul>");
                for p in parameters {
                    html.push_str(&format!(
                        "<li><code>{}</code> (in {}): {}</li>",
                        escape(p["name"].as_str().unwrap_or_default()),
                        escape(p["in"].as_str().unwrap_or_default()),
                        escape(p["description"].as_str().unwrap_or_default())
                    ));
                }
                html.push_str("</ul>");
            }
            if let Some(body) = operation["requestBody"]["content"]["application/json"]["schema"].as_object() {
                html.push_str(&format!("<h3>Body</h3><p>JSON: {}</p>", escape(&schema_name(&Value::Object(body.clone())))));
            }
            html.push_str("<h3>Answers</h3><ul>");
            for (status, response) in operation["responses"].as_object().unwrap_or(&empty) {
                let schema = &response["content"]["application/json"]["schema"];
                let body = if schema.is_null() { String::new() } else { format!(" ({})", escape(&schema_name(schema))) };
                html.push_str(&format!(
                    "<li><code>{}</code> {}{body}</li>",
                    escape(status),
                    escape(response["description"].as_str().unwrap_or_default())
                ));
            }
            html.push_str("</ul></section>");
        }
    }
    html.push_str("<h2>Schemas</h2>");
    for (name, schema) in document["components"]["schemas"].as_object().unwrap_or(&empty) {
        html.push_str(&format!("<section class=\"card\" id=\"schema-{0}\"><h3>{0}</h3>", escape(name)));
        if let Some(values) = schema["enum"].as_array() {
            let values: Vec<String> = values.iter().filter_map(Value::as_str).map(|v| format!("<code>{}</code>", escape(v))).collect();
            html.push_str(&format!("<p>One of {}</p>", values.join(", ")));
        }
        if let Some(properties) = schema["properties"].as_object() {
            html.push_str("<ul>");
            for (field, property) in properties {
                html.push_str(&format!(
                    "<li><code>{}</code>: {}{}</li>",
                    escape(field),
                    escape(&schema_name(property)),
                    property["description"].as_str().map(|d| format!(". {}", escape(d))).unwrap_or_default()
                ));
            }
            html.push_str("</ul>");
        }
        html.push_str("</section>");
    }
    html.push_str("</main></body></html>");
    html
}
