//! The shared rate-limit state on a real Redis (a throwaway `redis-server`
//! per test): the GCRA's burst and refill, looking without spending, two
//! clients spending one allowance, and an unreachable Redis reported at
//! once and recovered from.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use face_store::testing::redis::RedisServer;
use face_store::{RedisRates, StoreError};

fn rates(server: &RedisServer) -> RedisRates {
    RedisRates::new(&server.url(), Duration::from_millis(250)).unwrap()
}

#[tokio::test]
async fn a_burst_then_one_per_interval_and_looking_spends_nothing() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let r = rates(&server);
    // 60 a minute (one a second), 2 more at once: 3 admitted, then a wait
    // of about a second.
    for i in 0..3 {
        assert_eq!(r.take("k", 60, 2, 1).await.unwrap(), Ok(()), "request {i}");
    }
    let wait = r.take("k", 60, 2, 1).await.unwrap().unwrap_err();
    assert!(
        wait > Duration::from_millis(900) && wait <= Duration::from_secs(1),
        "{wait:?}"
    );
    // Looking says the same and spends nothing.
    assert!(r.take("k", 60, 2, 0).await.unwrap().is_err());
    assert_eq!(r.take("other", 60, 2, 0).await.unwrap(), Ok(()));
    for _ in 0..10 {
        assert_eq!(r.take("other", 60, 2, 0).await.unwrap(), Ok(()));
    }
    assert_eq!(r.take("other", 60, 2, 1).await.unwrap(), Ok(()));
    // After the wait, one more.
    tokio::time::sleep(wait + Duration::from_millis(20)).await;
    assert_eq!(r.take("k", 60, 2, 1).await.unwrap(), Ok(()));
    assert!(r.take("k", 60, 2, 1).await.unwrap().is_err());
}

#[tokio::test]
async fn two_clients_spend_one_allowance_and_the_rate_holds() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let (a, b) = (rates(&server), rates(&server));
    // 600 a minute (one per 100 ms), burst 4: over 2 s from two clients
    // hammering together, about 5 + 20 are admitted, never twice that.
    let start = Instant::now();
    let mut admitted = 0;
    while start.elapsed() < Duration::from_secs(2) {
        for r in [&a, &b] {
            if r.take("shared", 600, 4, 1).await.unwrap().is_ok() {
                admitted += 1;
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let expected = 5.0 + elapsed * 10.0;
    assert!(
        (admitted as f64) <= expected + 1.0 && (admitted as f64) >= expected - 2.0,
        "{admitted} admitted in {elapsed:.2} s, expected about {expected:.1}"
    );
}

#[tokio::test]
async fn an_unreachable_redis_is_an_error_at_once_and_recovery_follows() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let r = rates(&server);
    assert_eq!(r.take("k", 60, 0, 1).await.unwrap(), Ok(()));
    server.stop();
    let started = Instant::now();
    let err = r.take("k", 60, 0, 1).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
    assert!(r.ping().await.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    server.resume();
    // Back within a few seconds; the state went with the old server.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(answer) = r.take("k", 60, 0, 1).await {
            assert_eq!(answer, Ok(()));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // And a client made while Redis was down works once it is up.
    server.stop();
    let late = rates(&server);
    assert!(late.ping().await.is_err());
    server.resume();
    let deadline = Instant::now() + Duration::from_secs(10);
    while late.ping().await.is_err() {
        assert!(Instant::now() < deadline, "the lazy client never connected");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_redis_that_stops_answering_is_a_timeout_then_a_fresh_connection() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let r = rates(&server);
    assert_eq!(r.take("k", 60, 5, 1).await.unwrap(), Ok(()));
    server.freeze();
    for _ in 0..3 {
        let started = Instant::now();
        let err = r.take("k", 60, 5, 1).await.unwrap_err();
        assert!(matches!(err, StoreError::Unavailable(_)), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }
    server.thaw();
    let deadline = Instant::now() + Duration::from_secs(10);
    while r.take("k", 60, 5, 1).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "no recovery after Redis answered again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
