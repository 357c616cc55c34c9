//! The live notification count: a Server-Sent Events stream the header subscribes to after
//! hydration. It carries only the signed-in person's unread count: at once on connecting, then
//! whenever it changes. This server's workers say at once whom they notified; notifications
//! made on other servers are noticed at the next check (every `CHECK_EVERY`). Signed out, the
//! answer is 204, which tells the browser to stop reconnecting.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::time::Duration;
use tessera_backend::sign_in::BrowserSignIn;
use tessera_backend::Backend;
use tokio::sync::broadcast::error::RecvError;
use tower_sessions::Session;
use uuid::Uuid;

const CHECK_EVERY: Duration = Duration::from_secs(10);

pub fn router(backend: Backend) -> axum::Router {
    axum::Router::new().route("/api/notifications/stream", axum::routing::get(stream)).with_state(backend)
}

struct Watch {
    backend: Backend,
    user_id: Uuid,
    heard: tokio::sync::broadcast::Receiver<Uuid>,
    sent: Option<i64>,
}

async fn stream(State(backend): State<Backend>, session: Session) -> Response {
    let Ok(Some(user_id)) = BrowserSignIn::new(&session).user_id().await else {
        return StatusCode::NO_CONTENT.into_response();
    };
    let watch = Watch { heard: tessera_backend::notifications::subscribe(), backend, user_id, sent: None };
    let events = futures_util::stream::unfold(watch, |mut watch| async move {
        loop {
            if watch.sent.is_some() {
                // Until this server's workers notify this person, or the next check.
                let _ = tokio::time::timeout(CHECK_EVERY, async {
                    loop {
                        match watch.heard.recv().await {
                            Ok(user) if user == watch.user_id => return,
                            Ok(_) | Err(RecvError::Lagged(_)) => continue,
                            Err(RecvError::Closed) => std::future::pending::<()>().await,
                        }
                    }
                })
                .await;
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
