//! One GraphQL WebSocket session (`/graphql/ws`, graphql-transport-ws or the legacy
//! graphql-ws): async-graphql speaks the protocol; this module decides when and how the
//! server ends the socket, each reason with its own close code, chosen here and nowhere
//! else:
//!
//! | reason | code |
//! |---|---|
//! | a message the protocol cannot read | 4400 |
//! | a subscription before the connection was acknowledged | 4401 |
//! | `connection_init` refused; the token expired; the caller demoted to AGENT or removed | 4403 |
//! | no `connection_init` within the configured time | 4408 |
//! | a message over the size limit | 1009 |
//! | the server shuts down | 1001 |
//! | an internal failure (e.g. the database while authenticating) | 1011 |

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_graphql::Data;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{broadcast, watch};

use super::AppState;
use crate::graphql::{Auth, Refusal};
use crate::live::hub::HubEvent;

/// Why the server ends a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// A message the protocol cannot read.
    BadMessage,
    /// A subscription before the acknowledgement.
    NotAcknowledged,
    /// The token's `exp` passed.
    TokenExpired,
    /// `connection_init` refused (no valid token naming an agent, a service token).
    Refused,
    /// The caller's stored role no longer allows what the session was opened for.
    Demoted,
    /// No `connection_init` in time.
    InitTimeout,
    /// A message over the size limit.
    TooBig,
    /// Shutdown.
    GoingAway,
    /// The database could not serve now: try again later.
    Busy,
    /// Our fault.
    Internal,
}

impl Ending {
    /// The close frame of this ending.
    pub fn frame(self) -> CloseFrame {
        let (code, reason) = match self {
            Ending::BadMessage => (4400, "Bad request: unreadable message"),
            Ending::NotAcknowledged => (4401, "Unauthorized: connection not acknowledged"),
            Ending::TokenExpired => (4403, "Forbidden: the token has expired"),
            Ending::Refused => (4403, "Forbidden"),
            Ending::Demoted => (4403, "Forbidden: the caller's role changed"),
            Ending::InitTimeout => (4408, "Connection initialisation timeout"),
            Ending::TooBig => (1009, "Message too big"),
            Ending::GoingAway => (1001, "Server shutting down"),
            Ending::Busy => (1013, "Try again later: the service is busy"),
            Ending::Internal => (1011, "Internal server error"),
        };
        CloseFrame {
            code,
            reason: reason.into(),
        }
    }

    /// Our ending for a close async-graphql decided itself (by its code, never its text).
    fn of_library_close(code: u16) -> Option<Ending> {
        match code {
            1002 => Some(Ending::BadMessage),
            1011 => Some(Ending::NotAcknowledged),
            _ => None,
        }
    }
}

/// What `connection_init` decided.
#[derive(Clone, Debug)]
enum Phase {
    Waiting,
    Ready {
        org: String,
        agent_id: String,
        supervising: bool,
        exp: u64,
    },
    Refused,
}

/// The ending of a session, decided once.
#[derive(Default)]
struct Decision {
    ending: OnceLock<Ending>,
    decided: watch::Sender<bool>,
}

impl Decision {
    fn decide(&self, ending: Ending) {
        if self.ending.set(ending).is_ok() {
            self.decided.send_replace(true);
        }
    }
    fn get(&self) -> Option<Ending> {
        self.ending.get().copied()
    }
}

/// Serves one upgraded socket until the client leaves or the server ends it.
pub async fn serve(
    state: AppState,
    socket: WebSocket,
    protocol: GraphQLProtocol,
    activity: Option<super::conn::Activity>,
) {
    let _open = state.open_sockets.clone();
    let decision = Arc::new(Decision::default());
    let (phase_tx, phase_rx) = watch::channel(Phase::Waiting);
    let (mut sink, stream) = socket.split();

    // The client's messages, until an ending is decided; one over the limit decides 1009.
    let mut decided = decision.decided.subscribe();
    let input = {
        let decision = decision.clone();
        stream
            .take_until(async move {
                let _ = decided.wait_for(|d| *d).await;
            })
            .map(move |message| {
                if let Err(e) = &message {
                    if is_too_big(e) {
                        decision.decide(Ending::TooBig);
                    }
                }
                message
            })
    };
    // async-graphql writes into a channel; we forward to the socket, choosing close frames.
    let (out_tx, mut out_rx) = tokio::sync::mpsc::channel::<Message>(16);
    let out_tx = futures_util::sink::unfold(out_tx, |out_tx, message: Message| async move {
        out_tx.send(message).await.map(|()| out_tx)
    });
    let session = {
        let pool = state.pool.clone();
        let keys = state.keys.clone();
        let decision = decision.clone();
        GraphQLWebSocket::new_with_pair(out_tx, input, state.schema.clone(), protocol)
            .on_connection_init(move |payload| async move {
                let activity = activity;
                let claims = payload
                    .get("Authorization")
                    .or_else(|| payload.get("authorization"))
                    .and_then(|v| v.as_str())
                    .ok_or(crate::auth::AuthError::MissingToken)
                    .and_then(crate::auth::bearer_from_value)
                    .and_then(|token| keys.verify(token));
                let exp = claims.as_ref().map(|c| c.exp).unwrap_or(0);
                match Auth::resolve(&pool, claims).await {
                    Auth::Viewer(viewer) => {
                        // Acknowledged: the connection holds an established slot now.
                        if let Some(activity) = &activity {
                            activity.acknowledged();
                        }
                        phase_tx.send_replace(Phase::Ready {
                            org: viewer.org.clone(),
                            agent_id: viewer.agent_id.clone(),
                            supervising: viewer.is_supervising(),
                            exp,
                        });
                        let mut data = Data::default();
                        data.insert(Auth::Viewer(viewer));
                        Ok(data)
                    }
                    Auth::Refused(refusal) => {
                        decision.decide(match refusal {
                            Refusal::Internal => Ending::Internal,
                            Refusal::Unavailable => Ending::Busy,
                            _ => Ending::Refused,
                        });
                        phase_tx.send_replace(Phase::Refused);
                        // Legacy clients read it in `connection_error`.
                        Err(async_graphql::Error::new(refusal.message()))
                    }
                }
            })
            .serve()
    };
    let watcher = {
        let decision = decision.clone();
        let state = state.clone();
        async move {
            if let Some(ending) = watch_session(&state, phase_rx).await {
                decision.decide(ending);
            }
            std::future::pending::<()>().await
        }
    };
    let forward = async {
        let mut closed = false;
        // WebSocket pings (answered by every client) keep a quiet session from being closed
        // as idle, and find dead peers.
        let mut pings = tokio::time::interval(state.idle_timeout / 2);
        pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        pings.tick().await;
        loop {
            let message = tokio::select! {
                message = out_rx.recv() => match message {
                    Some(message) => message,
                    None => break,
                },
                _ = pings.tick() => Message::Ping(Default::default()),
            };
            let message = match message {
                Message::Close(frame) => {
                    closed = true;
                    let ending = decision.get().or_else(|| {
                        frame
                            .as_ref()
                            .and_then(|f| Ending::of_library_close(f.code))
                    });
                    Message::Close(ending.map(Ending::frame).or(frame))
                }
                other => other,
            };
            if sink.send(message).await.is_err() {
                return;
            }
            if closed {
                return;
            }
        }
        // async-graphql stopped (input ended): say why, if it was us.
        if let Some(ending) = decision.get() {
            let _ = sink.send(Message::Close(Some(ending.frame()))).await;
        }
    };
    tokio::select! {
        _ = async { tokio::join!(session, forward) } => {}
        _ = watcher => {}
    }
}

/// Waits for the reason to end a session from outside its messages: no `connection_init`
/// in time, the token's expiry, the caller's demotion or removal, shutdown. `None` when
/// nothing is to be done (a refused init is ended by the refusal itself).
async fn watch_session(state: &AppState, mut phase: watch::Receiver<Phase>) -> Option<Ending> {
    let shutdown = state.shutdown.clone();
    let mut events = state.hub.membership_events();
    let ready = tokio::select! {
        changed = phase.wait_for(|p| !matches!(p, Phase::Waiting)) => changed.ok()?.clone(),
        _ = tokio::time::sleep(state.ws_init_timeout) => return Some(Ending::InitTimeout),
        _ = shutdown.cancelled() => return Some(Ending::GoingAway),
    };
    let Phase::Ready {
        org,
        agent_id,
        supervising,
        exp,
    } = ready
    else {
        return None;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let until_exp = Duration::from_secs_f64((exp as f64 - now).max(0.0));
    let expiry = tokio::time::sleep(until_exp);
    tokio::pin!(expiry);
    loop {
        let event = tokio::select! {
            _ = &mut expiry => return Some(Ending::TokenExpired),
            _ = shutdown.cancelled() => return Some(Ending::GoingAway),
            event = events.recv() => event,
        };
        let recheck = match event {
            Ok(HubEvent::Changed {
                org: changed,
                members: true,
                ..
            }) => *changed == *org,
            Ok(HubEvent::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => true,
            Ok(_) => false,
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        if !recheck {
            continue;
        }
        match crate::store::agent(&state.pool, &org, &agent_id).await {
            Ok(Some(agent)) => {
                if supervising && !agent.role.is_supervising() {
                    return Some(Ending::Demoted);
                }
            }
            Ok(None) => return Some(Ending::Demoted),
            // The next change or resync checks again.
            Err(e) => tracing::warn!(error = %e, "re-checking a WebSocket caller's role"),
        }
    }
}

/// Whether a read failed because the message was over the size limit.
fn is_too_big(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(tungstenite::Error::Capacity(_)) = e.downcast_ref::<tungstenite::Error>() {
            return true;
        }
        source = e.source();
    }
    false
}
