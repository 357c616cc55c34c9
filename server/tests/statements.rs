//! What a page view costs the database: every statement the server sends while it renders a
//! signed-in organization page, counted from sqlx's own statement log (tracing target
//! `sqlx::query`). A test binary of its own: its global subscriber must see only this server.

mod common;

use common::TestApp;
use reqwest::StatusCode;
use std::sync::{Arc, Mutex};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// The statements sqlx reports, in order (their first line).
#[derive(Clone, Default)]
struct Statements(Arc<Mutex<Vec<String>>>);

impl Statements {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// The statement as sqlx logs it: its full text when it has one, else its summary.
struct Summary(Option<String>);

impl tracing::field::Visit for Summary {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.record_debug(field, &value)
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let text = || format!("{value:?}").trim_matches('"').replace("\\n", " ").split_whitespace().collect::<Vec<_>>().join(" ");
        match field.name() {
            "db.statement" if !text().is_empty() => self.0 = Some(text()),
            "summary" if self.0.is_none() => self.0 = Some(text()),
            _ => {}
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for Statements {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let mut summary = Summary(None);
        event.record(&mut summary);
        self.0.lock().unwrap().push(summary.0.unwrap_or_default());
    }
}

fn count_statements() -> Statements {
    let statements = Statements::default();
    let only_queries = tracing_subscriber::filter::Targets::new().with_target("sqlx::query", tracing::Level::TRACE);
    tracing_subscriber::registry().with(statements.clone().with_filter(only_queries)).init();
    statements
}

/// The most round trips (and transactions) a signed-in view of an organization's projects page
/// may cost, session lookup and all. What it costs today; lower these as the door folds more
/// into fewer trips (the first measurement, in issue 9, was 43 statements in 10 transactions).
const ROUND_TRIPS_PER_PAGE: usize = 18;
const TRANSACTIONS_PER_PAGE: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_in_page_view_sends_few_statements_and_writes_nothing() {
    let statements = count_statements();
    let app = TestApp::spawn().await;
    let owner = app.owner_of("acme").await;
    // The first view after signing in may still save the session; the next ones are the norm.
    assert_eq!(owner.get("/t/acme/projects").await.status, StatusCode::OK);
    statements.take();

    assert_eq!(owner.get("/t/acme/projects").await.status, StatusCode::OK);
    let sent = statements.take();
    // sqlx logs neither a transaction's BEGIN nor a rollback it queues on drop; every
    // transaction the app opens (db::begin) makes its settings first, in one trip.
    let transactions = sent.iter().filter(|s| s.starts_with("SET LOCAL")).count();
    let round_trips = sent.len() + transactions;
    let report = sent.join("\n  ");
    println!("one page view: {round_trips} round trips in {transactions} transactions:\n  {report}");
    assert!(round_trips <= ROUND_TRIPS_PER_PAGE, "{round_trips} round trips (budget {ROUND_TRIPS_PER_PAGE}):\n  {report}");
    assert!(transactions <= TRANSACTIONS_PER_PAGE, "{transactions} transactions (budget {TRANSACTIONS_PER_PAGE}):\n  {report}");
    let writes: Vec<&String> = sent.iter().filter(|s| ["INSERT", "UPDATE", "DELETE"].iter().any(|w| s.to_uppercase().starts_with(w))).collect();
    assert!(writes.is_empty(), "viewing a page writes nothing: {writes:?}");
}
