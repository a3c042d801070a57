//! `POST /stream/tickets` and `GET /stream`, the WebSocket (the protocol is
//! in `docs/stream.md`).
//!
//! Per connection, two local tasks: the reader takes messages off the
//! socket and keeps the connection's mailbox — at most one frame waiting,
//! a newer frame replaces it (the replaced one is reported `dropped`,
//! reason `superseded`) — and enforces the limits (frame size: close 1009;
//! frames faster than `stream.max_fps`: `dropped`, reason `rate`; frames
//! whose sequence number does not increase: `dropped`, reason
//! `out_of_order`; idle timeout and session length: close 1000 with the
//! reason); the processor takes the waiting frame, runs the use case
//! (`FaceService::stream_frame`) and sends its event. So a connection
//! holds one frame waiting and one in work, never a queue, and a client
//! that sends too fast gets the newest frame processed, not an ever later
//! one. Who may connect is the guard's (a key, or a ticket from
//! `POST /stream/tickets`); which mode the key may use is the use case's.
//!
//! The challenge mode (`{"mode": "challenge", "session_id": ...}`) answers
//! a liveness session with the stream's frames, each timed by its arrival
//! on this server's clock: the processor holds the answer
//! (`face_service::answer::SessionAnswer`) beside the stream's own session
//! and feeds it each frame until the session ends, then returns to the
//! stream's mode. An answer left unfinished (another mode, the connection
//! closed) is abandoned: its lockout attempt released, the session left to
//! expire or be answered again.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use actix_ws::{CloseCode, CloseReason, Message, MessageStream, ProtocolError, Session};
use face_service::answer::{AnswerStep, SessionAnswer};
use face_service::limits::{Limit, Refusal};
use face_service::sessions::SessionResult;
use face_service::stream::{StreamFrame, StreamMode, StreamSession};
use face_service::{Caller, Principal, ServiceError};
use serde_json::json;
use tokio::sync::Notify;

use super::AppState;
use crate::api::{ErrorJson, StreamTicket};
use crate::error::ApiError;

/// The bytes before the JPEG in each binary message: the sequence number
/// (u32, big-endian) and the client's timestamp (u64 milliseconds,
/// big-endian).
pub const HEADER_BYTES: usize = 12;

/// The subprotocol the server speaks; a browser offers it beside
/// `facegate.ticket.<ticket>`.
pub const PROTOCOL: &str = "facegate";

/// A ticket for opening `GET /stream` without a header (browsers cannot
/// set one on a WebSocket): single use, valid for `expires_in` seconds,
/// standing for the key that asked for it.
///
/// Pass it as `GET /stream?ticket=...` or as the WebSocket subprotocol
/// `facegate.ticket.<ticket>` beside `facegate`. The stream's protocol
/// (binary frames with a 12-byte header: sequence number u32 and client
/// timestamp u64 in milliseconds, both big-endian, then one JPEG; text
/// messages `{"mode": "identify" | "detect"}`; JSON events `frame`,
/// `dropped`, `mode`, `error`; close codes 1009 frame too large, 1013 too
/// many streams for the key, 1000 idle or session length) is described in
/// docs/stream.md.
#[utoipa::path(post, path = "/stream/tickets", tag = "recognition",
    responses(
        (status = 201, body = StreamTicket),
        (status = 503, body = ErrorJson, description = "the store is unavailable")))]
pub async fn tickets(
    state: web::Data<AppState>,
    caller: web::ReqData<Caller>,
) -> Result<HttpResponse, ApiError> {
    let principal = Principal {
        key_id: caller.key_id,
        key_name: caller.key_name.clone().unwrap_or_default(),
        scopes: caller.scopes.clone(),
    };
    let (ticket, ttl) = state.service.tickets().issue(&principal).await?;
    Ok(HttpResponse::Created().json(StreamTicket {
        ticket,
        expires_in: ttl.as_secs(),
    }))
}

/// The WebSocket upgrade.
pub async fn stream(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    caller: web::ReqData<Caller>,
) -> HttpResponse {
    let (response, session, messages) =
        match actix_ws::handle_with_protocols(&req, body, &[PROTOCOL]) {
            Ok(parts) => parts,
            Err(e) => {
                return ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "not_a_websocket",
                    format!("GET /stream is a WebSocket: {e}"),
                )
                .error_response();
            }
        };
    let messages = messages.max_frame_size(state.streams.settings.max_frame_bytes);
    // Counted per key (without authentication, per client address) here,
    // in the order the upgrades are answered: taken inside the spawned
    // task, a later stream could take the slot of an earlier one whose
    // task had not run yet.
    let holder = match (caller.key_id, &caller.client) {
        (Some(id), _) => format!("key {id}"),
        (None, Some(client)) => format!("client {client}"),
        (None, None) => "anonymous".to_string(),
    };
    let hold = state.streams.hold(holder);
    actix_web::rt::spawn(connection(
        state.into_inner(),
        caller.into_inner(),
        (session, hold),
        messages,
    ));
    response
}

/// A frame as received.
struct Frame {
    seq: u32,
    client_ms: u64,
    jpeg: Vec<u8>,
    arrived: Instant,
}

/// Counts one frame's outcome.
fn count(outcome: &'static str) {
    metrics::counter!(crate::metrics::STREAM_FRAMES, "outcome" => outcome).increment(1);
}

/// Counts the open streams while alive.
struct Open;

impl Open {
    fn new() -> Self {
        metrics::gauge!(crate::metrics::STREAMS_OPEN).increment(1.0);
        Open
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        metrics::gauge!(crate::metrics::STREAMS_OPEN).decrement(1.0);
    }
}

/// A text message: a stream mode, or a liveness session to answer.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
enum Request {
    Detect,
    Identify,
    Verify { user_id: i64 },
    Challenge { session_id: String },
}

/// What the reader leaves for the processor.
#[derive(Default)]
struct Mailbox {
    frame: Option<Frame>,
    request: Option<Request>,
    closed: bool,
}

/// How often an answer without frames is checked against its deadline.
const DEADLINE_TICK: Duration = Duration::from_millis(500);

/// How long one event may take to leave: a client that stops reading
/// (its TCP window closed) is closed, not waited for.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends one event; false when the client is gone or does not read.
async fn send(session: &mut Session, event: serde_json::Value) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, session.text(event.to_string())).await,
        Ok(Ok(()))
    )
}

async fn connection(
    state: Arc<AppState>,
    caller: Caller,
    (session, hold): (Session, Option<crate::state::StreamHold>),
    messages: MessageStream,
) {
    let Some(_hold) = hold else {
        close(
            session,
            CloseCode::Again,
            "too many streams for this API key",
        )
        .await;
        return;
    };
    let mode = state.service.initial_stream_mode(&caller);
    let stream = match state.service.stream_session(&caller, mode).await {
        Ok(s) => s,
        Err(e) => {
            close(session, CloseCode::Policy, &e.to_string()).await;
            return;
        }
    };
    let _open = Open::new();
    let mailbox = Arc::new(Mutex::new(Mailbox::default()));
    let wake = Arc::new(Notify::new());
    let processor = actix_web::rt::spawn(process(
        Arc::clone(&state),
        caller,
        stream,
        session.clone(),
        Arc::clone(&mailbox),
        Arc::clone(&wake),
    ));
    read(&state, session, messages, &mailbox, &wake).await;
    lock(&mailbox).closed = true;
    wake.notify_one();
    let _ = processor.await;
}

fn lock(m: &Mutex<Mailbox>) -> std::sync::MutexGuard<'_, Mailbox> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Reads messages until the client leaves or a limit closes the stream.
async fn read(
    state: &AppState,
    mut session: Session,
    mut messages: MessageStream,
    mailbox: &Mutex<Mailbox>,
    wake: &Notify,
) {
    let limits = &state.streams.settings;
    let idle = Duration::from_secs(limits.idle_timeout_secs.max(1));
    let ends = tokio::time::Instant::now() + Duration::from_secs(limits.max_session_secs.max(1));
    let interval = Duration::from_secs_f64(1.0 / f64::from(limits.max_fps.max(1)));
    let mut last_accepted: Option<Instant> = None;
    let mut last_seq: Option<u32> = None;
    loop {
        let next = tokio::select! {
            _ = tokio::time::sleep_until(ends) => {
                close(session, CloseCode::Normal, "session length limit (stream.max_session_secs)").await;
                return;
            }
            next = tokio::time::timeout(idle, messages.recv()) => next,
        };
        let message = match next {
            Err(_) => {
                close(
                    session,
                    CloseCode::Normal,
                    "idle timeout (stream.idle_timeout_secs)",
                )
                .await;
                return;
            }
            Ok(None) => return,
            Ok(Some(Err(ProtocolError::Overflow))) => {
                close(
                    session,
                    CloseCode::Size,
                    "frame larger than stream.max_frame_bytes",
                )
                .await;
                return;
            }
            Ok(Some(Err(e))) => {
                close(session, CloseCode::Protocol, &e.to_string()).await;
                return;
            }
            Ok(Some(Ok(message))) => message,
        };
        match message {
            Message::Binary(bytes) => {
                let Some((seq, client_ms)) = header(&bytes) else {
                    let event = json!({"type": "error", "seq": null, "error": "bad_frame",
                        "message": format!("a frame is a {HEADER_BYTES}-byte header (sequence number u32, client timestamp u64, big-endian) and a JPEG")});
                    if !send(&mut session, event).await {
                        return;
                    }
                    continue;
                };
                let refused = if last_seq.is_some_and(|s| seq <= s) {
                    Some("out_of_order")
                } else if last_accepted.is_some_and(|t| t.elapsed() < interval) {
                    Some("rate")
                } else {
                    None
                };
                last_seq = last_seq.max(Some(seq));
                if let Some(reason) = refused {
                    count(reason);
                    let event = json!({"type": "dropped", "seq": seq, "reason": reason});
                    if !send(&mut session, event).await {
                        return;
                    }
                    continue;
                }
                last_accepted = Some(Instant::now());
                // Copied only once accepted.
                let frame = Frame {
                    seq,
                    client_ms,
                    jpeg: bytes[HEADER_BYTES..].to_vec(),
                    arrived: Instant::now(),
                };
                let replaced = lock(mailbox).frame.replace(frame);
                wake.notify_one();
                if let Some(old) = replaced {
                    count("superseded");
                    let event = json!({"type": "dropped", "seq": old.seq, "reason": "superseded"});
                    if !send(&mut session, event).await {
                        return;
                    }
                }
            }
            Message::Text(text) => match serde_json::from_str::<Request>(&text) {
                Ok(request) => {
                    lock(mailbox).request = Some(request);
                    wake.notify_one();
                }
                Err(e) => {
                    // serde's message can quote the client's text: cut it.
                    let why: String = e.to_string().chars().take(160).collect();
                    let event = json!({"type": "error", "seq": null, "error": "bad_message",
                        "message": format!("a text message is {{\"mode\": \"identify\" | \"detect\"}}, {{\"mode\": \"verify\", \"user_id\": N}} or {{\"mode\": \"challenge\", \"session_id\": \"...\"}}: {why}")});
                    if !send(&mut session, event).await {
                        return;
                    }
                }
            },
            Message::Ping(bytes) => {
                if tokio::time::timeout(SEND_TIMEOUT, session.pong(&bytes))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Message::Continuation(_) => {
                close(
                    session,
                    CloseCode::Unsupported,
                    "fragmented messages are not supported: send each frame as one message",
                )
                .await;
                return;
            }
            Message::Close(_) => {
                let _ = session.close(None).await;
                return;
            }
            Message::Pong(_) | Message::Nop => {}
        }
    }
}

/// The sequence number and client timestamp of a frame with something
/// after its header.
fn header(bytes: &[u8]) -> Option<(u32, u64)> {
    let header = bytes
        .get(..HEADER_BYTES)
        .filter(|_| bytes.len() > HEADER_BYTES)?;
    let seq = u32::from_be_bytes(header[..4].try_into().ok()?);
    let client_ms = u64::from_be_bytes(header[4..].try_into().ok()?);
    Some((seq, client_ms))
}

/// Processes the waiting frame, one at a time, until the reader is done.
async fn process(
    state: Arc<AppState>,
    caller: Caller,
    mut stream: StreamSession,
    session: Session,
    mailbox: Arc<Mutex<Mailbox>>,
    wake: Arc<Notify>,
) {
    let mut answer = None;
    serve(
        &state,
        &caller,
        (&mut stream, &mut answer),
        session,
        &mailbox,
        &wake,
    )
    .await;
    // The tracks end with the connection (a verification in progress is
    // released; an identification undecided after a search counts failed),
    // and so does an unfinished challenge.
    if let Some(answer) = answer {
        state
            .service
            .abandon_session_answer(&caller, answer, &ServiceError::ClientGone)
            .await;
    }
    let _ = state.service.end_stream(&caller, stream).await;
}

async fn serve(
    state: &AppState,
    caller: &Caller,
    (stream, answer): (&mut StreamSession, &mut Option<SessionAnswer>),
    mut session: Session,
    mailbox: &Mutex<Mailbox>,
    wake: &Notify,
) {
    loop {
        // While a challenge is answered, the server's clock ends it even
        // when no frame comes (a client that only pings holds nothing).
        match answer.as_mut() {
            None => wake.notified().await,
            Some(current) => {
                let tick = tokio::time::timeout(DEADLINE_TICK, wake.notified()).await;
                if tick.is_err() {
                    let ended = state
                        .service
                        .session_deadline(caller, current, Instant::now())
                        .await;
                    if let Some(result) = ended {
                        *answer = None;
                        let event = match result {
                            Ok(r) => result_event(None, &r),
                            Err(e) => error_event(None, &e),
                        };
                        if !send(&mut session, event).await {
                            return;
                        }
                    }
                    continue;
                }
            }
        }
        loop {
            let (frame, request, closed) = {
                let mut m = lock(mailbox);
                (m.frame.take(), m.request.take(), m.closed)
            };
            if closed {
                return;
            }
            if let Some(request) = request {
                let event = match admitted(state, caller).await {
                    // Refused: nothing changes, a challenge goes on, and
                    // the frame waiting beside it is served below.
                    Err(refused) => refused,
                    Ok(()) => {
                        // Whatever comes next, an unfinished challenge ends.
                        if let Some(unfinished) = answer.take() {
                            let why = ServiceError::Conflict(
                                "the stream changed mode before the challenge was met".into(),
                            );
                            state
                                .service
                                .abandon_session_answer(caller, unfinished, &why)
                                .await;
                        }
                        apply(state, caller, (stream, answer), request).await
                    }
                };
                if !send(&mut session, event).await {
                    return;
                }
            }
            let Some(frame) = frame else { break };
            let event = match answer.as_mut() {
                Some(current) => {
                    let step = state
                        .service
                        .stream_session_frame(caller, current, frame.jpeg, frame.arrived)
                        .await;
                    if matches!(step, Ok(AnswerStep::Finished(_))) {
                        *answer = None;
                    }
                    match step {
                        Ok(step) => {
                            count("processed");
                            challenge_event(frame.seq, frame.client_ms, &step)
                        }
                        Err(e) => {
                            count("error");
                            error_event(Some(frame.seq), &e)
                        }
                    }
                }
                None => match state.service.stream_frame(caller, stream, frame.jpeg).await {
                    Ok(f) => {
                        count("processed");
                        frame_event(frame.seq, frame.client_ms, &f)
                    }
                    Err(e) => {
                        count("error");
                        error_event(Some(frame.seq), &e)
                    }
                },
            };
            let sent = send(&mut session, event).await;
            metrics::histogram!(crate::metrics::STREAM_FRAME_SECONDS)
                .record(frame.arrived.elapsed().as_secs_f64());
            if !sent {
                return;
            }
        }
    }
}

/// Admits a text message's request as the guard admits an HTTP request:
/// one of the key's allowance (the client's, without authentication).
/// Each costs what a request costs (a store read; a challenge, a lockout
/// reservation), and the one-slot mailbox alone would let a client that
/// sends them back to back have them served as fast as the store answers.
/// Refused: the error event (`rate_limited` with `retry_after_secs`, or
/// `rate_limits_unavailable`), and the stream goes on as it was. A caller
/// with neither a key nor an address is not counted, as the guard does not
/// count it.
async fn admitted(state: &AppState, caller: &Caller) -> Result<(), serde_json::Value> {
    let (limit, key) = match (caller.key_id, &caller.client_key, &caller.client) {
        (Some(id), _, _) => (Limit::ApiKey, id.to_string()),
        (None, Some(client), _) | (None, None, Some(client)) => {
            (Limit::ClientAddress, client.clone())
        }
        (None, None, None) => return Ok(()),
    };
    match crate::auth::charge(state.service.limits(), limit, &key).await {
        Ok(()) => Ok(()),
        Err(Refusal::Limited { retry_after_secs }) => {
            let what = crate::auth::counted(limit);
            Err(
                json!({"type": "error", "seq": null, "error": "rate_limited",
                "retry_after_secs": retry_after_secs,
                "message": format!("too many requests for this {what}: wait {retry_after_secs} s before the next text message")}),
            )
        }
        Err(Refusal::Unavailable) => Err(error_event(None, &ServiceError::RateLimitsUnavailable)),
    }
}

/// A text message's request: a new mode, or a challenge to answer; the
/// event that answers it.
async fn apply(
    state: &AppState,
    caller: &Caller,
    (stream, answer): (&mut StreamSession, &mut Option<SessionAnswer>),
    request: Request,
) -> serde_json::Value {
    let mode = match request {
        Request::Detect => StreamMode::Detect,
        Request::Identify => StreamMode::Identify,
        Request::Verify { user_id } => StreamMode::Verify { user_id },
        Request::Challenge { session_id } => {
            return match state
                .service
                .begin_session_answer(caller, &session_id)
                .await
            {
                Ok(begun) => {
                    let event = challenge_mode_event(&begun);
                    *answer = Some(begun);
                    event
                }
                Err(e) => error_event(None, &e),
            };
        }
    };
    match switch(state, caller, stream, mode).await {
        Ok(()) => mode_event(mode),
        Err(e) => error_event(None, &e),
    }
}

/// Starts a new session in `mode`; the old one's tracks end.
async fn switch(
    state: &AppState,
    caller: &Caller,
    stream: &mut StreamSession,
    mode: StreamMode,
) -> Result<(), ServiceError> {
    let new = state.service.stream_session(caller, mode).await?;
    let old = std::mem::replace(stream, new);
    state.service.end_stream(caller, old).await
}

/// `{"type": "mode", "mode": ...}` with the mode's fields.
fn mode_event(mode: StreamMode) -> serde_json::Value {
    let mut event = json!({"type": "mode"});
    if let (Some(e), Ok(serde_json::Value::Object(m))) =
        (event.as_object_mut(), serde_json::to_value(mode))
    {
        e.extend(m);
    }
    event
}

/// `{"type": "mode", "mode": "challenge", "session_id": ..., "steps": [...]}`.
fn challenge_mode_event(answer: &SessionAnswer) -> serde_json::Value {
    let s = answer.session();
    json!({
        "type": "mode",
        "mode": "challenge",
        "session_id": s.id,
        "steps": s.challenge.steps,
        "expires_at": s.expires_at,
        "phase_timeout_secs": s.phase_timeout_secs,
    })
}

/// A challenge frame's event: `challenge` with the phase and the face box
/// while it goes on, `challenge_result` when the session ended.
fn challenge_event(seq: u32, client_ms: u64, step: &AnswerStep) -> serde_json::Value {
    match step {
        AnswerStep::Progress(p) => {
            let mut event = json!({"type": "challenge", "seq": seq, "client_ts": client_ms});
            if let (Some(e), Ok(serde_json::Value::Object(m))) =
                (event.as_object_mut(), serde_json::to_value(p))
            {
                e.extend(m);
            }
            event
        }
        AnswerStep::Finished(r) => result_event(Some((seq, client_ms)), r),
    }
}

/// The session's result, after the frame `(seq, client_ms)` or, when the
/// server's clock ended it, after none.
fn result_event(frame: Option<(u32, u64)>, r: &SessionResult) -> serde_json::Value {
    json!({
        "type": "challenge_result",
        "seq": frame.map(|f| f.0),
        "client_ts": frame.map(|f| f.1),
        "session_id": r.session_id,
        "passed": r.passed,
        "reason": r.reason,
        "token": r.token,
        "frames": r.frames,
        "pad_checked": r.pad_checked,
    })
}

fn frame_event(seq: u32, client_ms: u64, f: &StreamFrame) -> serde_json::Value {
    json!({
        "type": "frame",
        "seq": seq,
        "client_ts": client_ms,
        "faces": f.faces,
        "ended": f.ended,
        "recognised": f.recognised,
    })
}

/// An error event: the error's kind and message, as the HTTP answers name
/// them.
fn error_event(seq: Option<u32>, e: &ServiceError) -> serde_json::Value {
    json!({"type": "error", "seq": seq, "error": e.kind(), "message": e.to_string()})
}

async fn close(session: Session, code: CloseCode, reason: &str) {
    let _ = session
        .close(Some(CloseReason {
            code,
            description: Some(reason.to_string()),
        }))
        .await;
}
