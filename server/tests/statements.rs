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

/// Whether a transaction `db::open` reports is read-only.
struct ReadOnly(bool);

impl tracing::field::Visit for ReadOnly {
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        if field.name() == "read_only" {
            self.0 = value;
        }
    }

    fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
}

impl<S: tracing::Subscriber> Layer<S> for Statements {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        // sqlx doesn't log a transaction's BEGIN; the one place that opens them does.
        let statement = if event.metadata().target() == "tessera::db" {
            let mut read_only = ReadOnly(false);
            event.record(&mut read_only);
            if read_only.0 { "BEGIN READ ONLY" } else { "BEGIN" }.to_string()
        } else {
            let mut summary = Summary(None);
            event.record(&mut summary);
            summary.0.unwrap_or_default()
        };
        self.0.lock().unwrap().push(statement);
    }
}

fn count_statements() -> Statements {
    let statements = Statements::default();
    let only_queries = tracing_subscriber::filter::Targets::new()
        .with_target("sqlx::query", tracing::Level::TRACE)
        .with_target("tessera::db", tracing::Level::DEBUG);
    tracing_subscriber::registry().with(statements.clone().with_filter(only_queries)).init();
    statements
}

/// The most round trips (and transactions) a signed-in view of an organization's projects page
/// may cost, session lookup and all: what it costs today, to be lowered as the door folds more
/// into fewer trips (the first measurement, in issue 9, was 43 statements in 10 transactions).
/// Exact, not a range: a page whose loads ran twice (Leptos builds a page more than once while
/// it resolves on the server; `RenderLoads` keeps that from querying again) shows up here.
const ROUND_TRIPS_PER_PAGE: usize = 5;
const TRANSACTIONS_PER_PAGE: usize = 1;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_in_page_view_takes_few_round_trips_all_read_only() {
    let statements = count_statements();
    let app = TestApp::spawn().await;
    let owner = app.owner_of("acme").await;
    // The first view after signing in may still save the session; the next ones are the norm.
    assert_eq!(owner.get("/t/acme/projects").await.status, StatusCode::OK);
    statements.take();

    // Several views: how often a render resolves its `Suspense` varies with timing, and a load
    // that runs twice does so only in some of them.
    for _ in 0..8 {
        assert_eq!(owner.get("/t/acme/projects").await.status, StatusCode::OK);
        let sent = statements.take();
        let transactions = sent.iter().filter(|s| s.starts_with("BEGIN")).count();
        let round_trips = sent.len();
        let report = sent.join("\n  ");
        println!("one page view: {round_trips} round trips in {transactions} transactions:\n  {report}");
        assert!(transactions > 0 && sent.iter().any(|s| s.starts_with("SELECT")), "the statement log is seen:\n  {report}");
        assert!(round_trips <= ROUND_TRIPS_PER_PAGE, "{round_trips} round trips (budget {ROUND_TRIPS_PER_PAGE}):\n  {report}");
        assert!(transactions <= TRANSACTIONS_PER_PAGE, "{transactions} transactions (budget {TRANSACTIONS_PER_PAGE}):\n  {report}");
        // Every transaction a page view opens is read-only: PostgreSQL itself refuses a write.
        let writable: Vec<&String> = sent.iter().filter(|s| *s == "BEGIN").collect();
        assert!(writable.is_empty(), "viewing a page opens only read-only transactions:\n  {report}");
    }
}
