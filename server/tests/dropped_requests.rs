//! A request that goes away half-way (its client disconnected) leaves nothing behind on the
//! database connection it was using for the request that borrows it next.

mod common;

use common::TestApp;
use sqlx::postgres::PgPoolOptions;
use std::future::Future;
use std::task::{Context, Waker};
use std::time::Duration;
use tessera_backend::db;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_dropped_while_it_starts_does_not_carry_over_to_the_next_borrower() {
    let app = TestApp::spawn().await;
    // One connection, so the next borrower surely gets the one the dropped request had.
    let pool = PgPoolOptions::new().max_connections(1).connect(&app.app_db_url).await.unwrap();
    let backend_of = |pool: &sqlx::PgPool| {
        let pool = pool.clone();
        async move { sqlx::query_scalar::<_, i32>("SELECT pg_backend_pid()").fetch_one(&pool).await.unwrap() }
    };
    let pid = backend_of(&pool).await;

    // A read-only transaction whose BEGIN has reached the server, and then its request is
    // dropped before it reads the answer. Polled only until the server shows the transaction
    // open (the connection is borrowed first, then the BEGIN goes out), never after.
    let mut starting = Box::pin(db::open(&pool, true));
    let mut cx = Context::from_waker(Waker::noop());
    let mut in_transaction = false;
    let mut answered = None;
    for _ in 0..250 {
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM pg_stat_activity WHERE pid = $1").bind(pid).fetch_one(&app.inspect).await.unwrap();
        if state.as_deref() == Some("idle in transaction") {
            in_transaction = true;
            break;
        }
        // (Should the answer be read after all, the transaction is dropped below like any.)
        if let std::task::Poll::Ready(answer) = starting.as_mut().poll(&mut cx) {
            answered = Some(answer.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(in_transaction, "the server began the transaction");
    drop(starting);
    drop(answered);

    // The next request, on that same connection, writes: it gets a transaction of its own,
    // neither read-only nor shared with the one that went away.
    let mut tx = db::open(&pool, false).await.unwrap();
    let read_only: String = sqlx::query_scalar("SHOW transaction_read_only").fetch_one(&mut *tx).await.unwrap();
    assert_eq!(read_only, "off", "the write transaction is not the dropped read-only one");
    let same_backend: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut *tx).await.unwrap();
    assert_eq!(same_backend, pid);
    tx.commit().await.unwrap();
    let state: Option<String> =
        sqlx::query_scalar("SELECT state FROM pg_stat_activity WHERE pid = $1").bind(pid).fetch_one(&app.inspect).await.unwrap();
    assert_eq!(state.as_deref(), Some("idle"), "after its commit nothing is left open");
}
