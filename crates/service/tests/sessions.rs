//! Liveness challenge sessions as a use case, on a real SQLite store with
//! the fast pipeline: a session is created for a user with a random
//! challenge and an expiry, is visible only to the key that created it,
//! needs the purpose's scope and an existing user, and outlives a restart
//! (a new service on the same store reads it back).
#![allow(clippy::unwrap_used)]

use face_service::challenge::{SessionFailure, Turn};
use face_service::sessions::{SessionFrame, SessionPurpose, SESSION_TTL_SECS};
use face_service::{Caller, EnrolRequest, FaceService, Scope, ServiceError, UserName};

mod common;

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
    let user_id = enrol(&first, "Glasses", "d12.mjpeg").await;
    let kiosk = key(5, &[Scope::Recognize]);
    let purpose = SessionPurpose::Verify { user_id };
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

/// Frames of d12 that turn as `steps` ask (its turns: left 36–50, right
/// 79–92, left 162–173), or `None` when the clip has no such run.
fn d12_run(steps: &[Turn]) -> Option<std::ops::Range<usize>> {
    use Turn::*;
    match steps {
        [TurnLeft, TurnRight] => Some(30..110),
        [TurnRight, TurnLeft] => Some(60..183),
        [TurnLeft, TurnRight, TurnLeft] => Some(30..183),
        _ => None,
    }
}

/// Frames of d12 that turn the other way first.
fn d12_wrong(steps: &[Turn]) -> std::ops::Range<usize> {
    match steps[0] {
        Turn::TurnLeft => 60..183,
        Turn::TurnRight => 30..110,
    }
}

async fn enrol(service: &FaceService, name: &str, clip: &str) -> i64 {
    let frame = common::frames(clip)[0].clone();
    service
        .enrol(
            &Caller::command_line(),
            EnrolRequest {
                name: UserName::parse(name).unwrap(),
                images: vec![frame],
                external_ref: None,
                metadata: None,
                allow_duplicate: false,
                liveness: Default::default(),
                liveness_token: None,
            },
        )
        .await
        .unwrap()
        .user
        .id
}

/// A session for `purpose` whose drawn steps d12 covers (drawn again
/// until they are).
async fn coverable_session(
    service: &FaceService,
    caller: &Caller,
    purpose: SessionPurpose,
) -> face_service::sessions::ChallengeSession {
    loop {
        let s = service
            .create_challenge_session(caller, purpose)
            .await
            .unwrap();
        if d12_run(&s.challenge.steps).is_some() {
            return s;
        }
    }
}

/// A passed verify session's token for `user_id`.
async fn pass(service: &FaceService, kiosk: &Caller, user_id: i64, d12: &[Vec<u8>]) -> String {
    let s = coverable_session(service, kiosk, SessionPurpose::Verify { user_id }).await;
    let run = d12_run(&s.challenge.steps).unwrap();
    let r = service
        .answer_challenge_session(kiosk, &s.id, captured(&d12[run]).await)
        .await
        .unwrap();
    r.token.unwrap()
}

/// `frames` as captured at 25 frames a second, after waiting as long as
/// capturing them would have taken (the server refuses frames that span
/// more time than the session has existed).
async fn captured(frames: &[Vec<u8>]) -> Vec<SessionFrame> {
    let out: Vec<SessionFrame> = frames
        .iter()
        .enumerate()
        .map(|(i, b)| SessionFrame {
            bytes: b.clone(),
            client_ms: 40 * i as u64,
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(40 * frames.len() as u64)).await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_turns_of_the_claimed_user_pass_once_and_another_person_is_not_them() {
    let dir = tempfile::tempdir().unwrap();
    let service = service(dir.path()).await;
    let me = enrol(&service, "Glasses", "d12.mjpeg").await;
    let someone = enrol(&service, "Plain", "d18.mjpeg").await;
    let d12 = common::frames("d12.mjpeg");
    let kiosk = key(5, &[Scope::Recognize]);

    let session = coverable_session(&service, &kiosk, SessionPurpose::Verify { user_id: me }).await;
    let run = d12_run(&session.challenge.steps).unwrap();
    let result = service
        .answer_challenge_session(&kiosk, &session.id, captured(&d12[run.clone()]).await)
        .await
        .unwrap();
    assert!(
        result.passed,
        "{result:?} for {:?}",
        session.challenge.steps
    );
    assert!(result
        .token
        .as_deref()
        .is_some_and(|t| t.starts_with("fglt_")));
    // Answered once.
    assert!(matches!(
        service
            .answer_challenge_session(&kiosk, &session.id, captured(&d12[run]).await)
            .await,
        Err(ServiceError::Conflict(_))
    ));

    // The token verifies the person once, for this key and this user; a
    // request refused before the decision (a looser threshold than this
    // key may ask for) does not spend it.
    let token = result.token.unwrap();
    let photo = d12[120].clone();
    let loose = service.parse_threshold(0.99).unwrap();
    assert!(matches!(
        service
            .verify_with_token(&kiosk, me, photo.clone(), Some(loose), &token)
            .await,
        Err(ServiceError::Forbidden { .. })
    ));
    let v = service
        .verify_with_token(&kiosk, me, photo.clone(), None, &token)
        .await
        .unwrap();
    assert!(v.matched, "{v:?}");
    assert!(matches!(
        service
            .verify_with_token(&kiosk, me, photo.clone(), None, &token)
            .await,
        Err(ServiceError::LivenessTokenRefused)
    ));
    // Another key, another user, a photo of someone else: each refused.
    let token = pass(&service, &kiosk, me, &d12).await;
    assert!(matches!(
        service
            .verify_with_token(
                &key(6, &[Scope::Recognize]),
                me,
                photo.clone(),
                None,
                &token
            )
            .await,
        Err(ServiceError::LivenessTokenRefused)
    ));
    assert!(matches!(
        service
            .verify_with_token(&kiosk, someone, photo.clone(), None, &token)
            .await,
        Err(ServiceError::LivenessTokenRefused)
    ));
    let stranger = common::frames("d18.mjpeg")[100].clone();
    let v = service
        .verify_with_token(&kiosk, me, stranger, None, &token)
        .await
        .unwrap();
    assert_eq!(
        (v.matched, v.reason),
        (false, Some("token_face_mismatch")),
        "{v:?}"
    );

    // The key test: the same live, correct turns, for another user.
    let session = coverable_session(
        &service,
        &kiosk,
        SessionPurpose::Verify { user_id: someone },
    )
    .await;
    let run = d12_run(&session.challenge.steps).unwrap();
    let result = service
        .answer_challenge_session(&kiosk, &session.id, captured(&d12[run]).await)
        .await
        .unwrap();
    assert_eq!(
        (result.passed, result.reason, result.token.is_none()),
        (false, Some(SessionFailure::NotClaimedUser), true),
        "{result:?}"
    );
    // Two failed attempts on the other user: the token refused for them
    // above, and this session.
    assert_eq!(
        service.lockouts().of(someone).await.unwrap().failures,
        2,
        "a refused token and a failed session are failed verifications"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_other_order_and_a_frontal_clip_fail() {
    let dir = tempfile::tempdir().unwrap();
    let service = service(dir.path()).await;
    let d12 = common::frames("d12.mjpeg");
    let booth = key(9, &[Scope::Enrol]);
    let session = coverable_session(&service, &booth, SessionPurpose::Enrol).await;
    let wrong = d12_wrong(&session.challenge.steps);
    let result = service
        .answer_challenge_session(&booth, &session.id, captured(&d12[wrong]).await)
        .await
        .unwrap();
    assert_eq!(
        result.reason,
        Some(SessionFailure::WrongDirection),
        "{result:?}"
    );

    let session = service
        .create_challenge_session(&booth, SessionPurpose::Enrol)
        .await
        .unwrap();
    let d13 = common::frames("d13.mjpeg");
    let result = service
        .answer_challenge_session(&booth, &session.id, captured(&d13[..150]).await)
        .await
        .unwrap();
    assert!(!result.passed, "{result:?}");
    assert_eq!(
        result.reason,
        Some(SessionFailure::StepTimeout),
        "{result:?}"
    );
}
