//! The live notification count: a Server-Sent Events stream the header subscribes to after
//! hydration. It carries only the signed-in person's unread count: at once on connecting, then
//! whenever it changes. This server's workers (and the person's marks) say at once whom it
//! concerns; notifications made on other servers are noticed at the next check (every
//! `CHECK_EVERY`), which also checks the session still stands (signed out elsewhere, revoked).
//! A stream ends after `LIFETIME` (the browser reconnects by itself, with its session checked
//! afresh) and when the server shuts down, so no open tab holds a shutdown up. Signed out, the
//! answer is 204, which tells the browser to stop reconnecting.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::sync::OnceLock;
use std::time::Duration;
use tessera_backend::sign_in::BrowserSignIn;
use tessera_backend::Backend;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use tower_sessions::session_store::SessionStore;
use tower_sessions::Session;
use uuid::Uuid;

const CHECK_EVERY: Duration = Duration::from_secs(10);
const LIFETIME: Duration = Duration::from_secs(10 * 60);

pub fn router(backend: Backend) -> axum::Router {
    axum::Router::new().route("/api/notifications/stream", axum::routing::get(stream)).with_state(backend)
}

fn stopping() -> &'static watch::Sender<bool> {
    static STOPPING: OnceLock<watch::Sender<bool>> = OnceLock::new();
    STOPPING.get_or_init(|| watch::channel(false).0)
}

/// Ends every open stream (the server is shutting down).
pub fn end_streams() {
    let _ = stopping().send(true);
}

struct Watch {
    backend: Backend,
    user_id: Uuid,
    session: Option<tower_sessions::session::Id>,
    heard: tokio::sync::broadcast::Receiver<Uuid>,
    stop: watch::Receiver<bool>,
    ends_at: tokio::time::Instant,
    sent: Option<i64>,
}

impl Watch {
    /// Waits until this person's count may have changed; false when the stream should end.
    async fn wait(&mut self) -> bool {
        let heard = async {
            loop {
                match self.heard.recv().await {
                    Ok(user) if user == self.user_id => return,
                    // Missed some: one of them may have been for this person.
                    Err(RecvError::Lagged(_)) => return,
                    Ok(_) => continue,
                    Err(RecvError::Closed) => std::future::pending::<()>().await,
                }
            }
        };
        tokio::select! {
            _ = heard => true,
            _ = tokio::time::sleep(CHECK_EVERY) => true,
            _ = tokio::time::sleep_until(self.ends_at) => false,
            _ = self.stop.wait_for(|stop| *stop) => false,
        }
    }

    /// Whether the session the stream was opened with still stands.
    async fn session_stands(&self) -> bool {
        match &self.session {
            Some(id) => matches!(self.backend.sessions.load(id).await, Ok(Some(_))),
            None => false,
        }
    }
}

async fn stream(State(backend): State<Backend>, session: Session) -> Response {
    let Ok(Some(user_id)) = BrowserSignIn::new(&session).user_id().await else {
        return StatusCode::NO_CONTENT.into_response();
    };
    let watch = Watch {
        heard: tessera_backend::notifications::subscribe(),
        stop: stopping().subscribe(),
        ends_at: tokio::time::Instant::now() + LIFETIME,
        session: session.id(),
        backend,
        user_id,
        sent: None,
    };
    let events = futures_util::stream::unfold(watch, |mut watch| async move {
        loop {
            if watch.sent.is_some() && (!watch.wait().await || !watch.session_stands().await) {
                return None;
            }
            // A failed check ends the stream; the browser reconnects and starts over.
            let unread = watch.backend.notifications.unread(watch.user_id).await.ok()?;
            if watch.sent != Some(unread) {
                watch.sent = Some(unread);
                return Some((Ok::<_, Infallible>(Event::default().event("unread").data(unread.to_string())), watch));
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default()).into_response()
}
