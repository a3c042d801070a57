//! Liveness challenge sessions as a use case, on a real SQLite store with
//! the fast pipeline: a session is created for a user with a random
//! challenge and an expiry, is visible only to the key that created it,
//! needs the purpose's scope and an existing user, and outlives a restart
//! (a new service on the same store reads it back).
#![allow(clippy::unwrap_used)]

use face_service::challenge::Turn;
use face_service::sessions::{SessionPurpose, SESSION_TTL_SECS};
use face_service::{Caller, EnrolRequest, FaceService, Scope, ServiceError, UserName};

mod common;

use common::shared;

/// The fast pipeline on one worker over the SQLite store in `dir`.
async fn service(dir: &std::path::Path) -> FaceService {
    common::fast_service(dir, 1).await
}

fn key(id: i64, scopes: &[Scope]) -> Caller {
    Caller {
        key_id: Some(id),
        scopes: scopes.to_vec(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_its_keys_own_and_outlives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = service(dir.path()).await;
    let clip = std::fs::read(shared().join("video/d12.mjpeg")).unwrap();
    let frame = face_core::mjpeg::frames(&clip)[0].to_vec();
    let user = first
        .enrol(
            &Caller::command_line(),
            EnrolRequest {
                name: UserName::parse("Glasses").unwrap(),
                images: vec![frame],
                external_ref: None,
                metadata: None,
                allow_duplicate: false,
                liveness: Default::default(),
            },
        )
        .await
        .unwrap()
        .user;
    let kiosk = key(5, &[Scope::Recognize]);
    let purpose = SessionPurpose::Verify { user_id: user.id };
    let before = chrono::Utc::now();
    let session = first
        .create_challenge_session(&kiosk, purpose)
        .await
        .unwrap();
    assert_eq!(session.id.len(), 32);
    assert_eq!(session.purpose, purpose);
    assert_eq!(session.outcome, None);
    let steps = &session.challenge.steps;
    assert!((2..=3).contains(&steps.len()), "{steps:?}");
    assert!(
        steps.windows(2).all(|w| w[0] != w[1]),
        "alternating: {steps:?}"
    );
    assert!(steps
        .iter()
        .all(|s| matches!(s, Turn::TurnLeft | Turn::TurnRight)));
    let ttl = (session.expires_at - before).num_seconds();
    assert!(
        (i64::from(SESSION_TTL_SECS) - 2..=i64::from(SESSION_TTL_SECS)).contains(&ttl),
        "{ttl}"
    );

    // Only its key sees it.
    assert_eq!(
        first.challenge_session(&kiosk, &session.id).await.unwrap(),
        session
    );
    assert!(matches!(
        first
            .challenge_session(&key(6, &[Scope::Recognize]), &session.id)
            .await,
        Err(ServiceError::LivenessSessionNotFound(_))
    ));
    // The purpose's scope, and a user who exists.
    assert!(matches!(
        first
            .create_challenge_session(&key(7, &[Scope::Enrol]), purpose)
            .await,
        Err(ServiceError::Forbidden { .. })
    ));
    assert!(matches!(
        first
            .create_challenge_session(&kiosk, SessionPurpose::Verify { user_id: 999 })
            .await,
        Err(ServiceError::UserNotFound(999))
    ));
    let enrol = first
        .create_challenge_session(&key(7, &[Scope::Enrol]), SessionPurpose::Enrol)
        .await
        .unwrap();
    assert_eq!(enrol.purpose, SessionPurpose::Enrol);

    // A new service on the same store: the session is still there.
    drop(first);
    let second = service(dir.path()).await;
    assert_eq!(
        second.challenge_session(&kiosk, &session.id).await.unwrap(),
        session
    );
}
