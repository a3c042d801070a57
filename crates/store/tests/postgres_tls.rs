//! PostgreSQL over TLS, against a real server: a private cluster with
//! `ssl = on`, a certificate for `localhost` signed by a throwaway CA (made
//! here with rcgen), and a `pg_hba.conf` that accepts TCP clients only over
//! TLS (`hostssl`, no `host` lines). Each `sslmode` is shown to connect or
//! to refuse with an error that names the cause. Fails (never skips) when
//! PostgreSQL or pgvector is missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::cluster::Cluster;
use common::contract::dlib;
use common::rng::Rng;
use face_store::{
    FaceStore, IndexState, NewTemplate, NewUser, PgSslMode, PgStore, PgTls, StoreError,
};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A self-signed CA: its PEM and the issuer that signs with it.
fn new_ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(params, key))
}

/// The client-side files: the server's CA and an unrelated one.
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    other_ca: PathBuf,
}

/// Writes a certificate for `localhost` (only) and the TLS settings into the
/// cluster, and the two CA files into a temp dir.
fn configure_tls(cluster: &Cluster) -> Pki {
    let (ca_pem, ca) = new_ca("FaceGate test CA");
    let (other_pem, _) = new_ca("Some other CA");

    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate().unwrap();
    let server_cert = params.signed_by(&server_key, &ca).unwrap();

    cluster.write_data_file("server.crt", server_cert.pem().as_bytes(), false);
    cluster.write_data_file("server.key", server_key.serialize_pem().as_bytes(), false);
    cluster.write_data_file(
        "postgresql.conf",
        b"\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n",
        true,
    );
    // TCP only over TLS; the local socket stays open for pg_ctl.
    cluster.write_data_file(
        "pg_hba.conf",
        b"local all all trust\n\
          hostssl all all 127.0.0.1/32 trust\n\
          hostssl all all ::1/128 trust\n",
        false,
    );

    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let other_ca = dir.path().join("other-ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    std::fs::write(&other_ca, other_pem).unwrap();
    Pki {
        _dir: dir,
        ca,
        other_ca,
    }
}

fn url(host: &str, cluster: &Cluster, params: &str) -> String {
    format!(
        "postgres://postgres@{host}:{}/postgres?{params}",
        cluster.port
    )
}

fn root(path: &Path) -> String {
    format!("sslrootcert={}", path.display())
}

async fn open(url: &str) -> Result<PgStore, StoreError> {
    let mut cfg = common::pg_config(url);
    cfg.pool_size = 2;
    cfg.connect_timeout = Duration::from_secs(5);
    PgStore::open(cfg).await
}

async fn refused(url: &str) -> String {
    match open(url).await {
        Ok(_) => panic!("{url}: connected, but should have been refused"),
        Err(e) => {
            eprintln!("{url}\n  -> {e}");
            e.to_string()
        }
    }
}

/// Whether the connection `url` describes is encrypted, and with what, as
/// the server sees it (through the same connector the store uses).
async fn server_side_ssl(url: &str) -> (bool, Option<String>) {
    let (pg, tls) = PgTls::from_url(url).unwrap();
    let client = tls.connect(&pg).await.unwrap();
    let row = client
        .query_one(
            "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmodes_against_a_tls_only_server() {
    let mut pki = None;
    let cluster = Cluster::start_configured(|c| pki = Some(configure_tls(c)));
    let pki = pki.unwrap();
    let ca = root(&pki.ca);
    let other_ca = root(&pki.other_ca);

    // 1. verify-full with the right CA and the certificate's name: the pool
    //    (health, writes, search) and the dedicated connection (migrations
    //    at open, an index build) all work, over TLS.
    let full = url("localhost", &cluster, &format!("sslmode=verify-full&{ca}"));
    let store = open(&full).await.expect("verify-full with the right CA");
    assert_eq!(store.tls().mode(), PgSslMode::VerifyFull);
    assert!(store.tls().verifies_chain() && store.tls().verifies_host_name());
    store.health().await.unwrap();
    let mut rng = Rng::new(7);
    let probe = rng.vector(128);
    let user = store
        .create_user(
            NewUser::named("over tls"),
            &dlib(),
            &[NewTemplate {
                embedding: probe.clone(),
                quality: 1.0,
            }],
        )
        .await
        .unwrap();
    let hits = store.search(&dlib(), &probe, 1).await.unwrap();
    assert_eq!(hits[0].user_id, user.id);
    store.build_index(&dlib()).await.unwrap();
    assert_eq!(store.index_state(&dlib()).await.unwrap(), IndexState::Valid);
    let (ssl, version) = server_side_ssl(&full).await;
    assert!(ssl, "the server sees a plaintext connection");
    eprintln!("verify-full: connected with {version:?}");
    drop(store);

    // 2. verify-full against a CA that did not sign the server's certificate.
    let e = refused(&url(
        "localhost",
        &cluster,
        &format!("sslmode=verify-full&{other_ca}"),
    ))
    .await;
    assert!(
        e.contains("certificate") && e.contains("not trusted"),
        "{e}"
    );
    assert!(e.contains(&pki.other_ca.display().to_string()), "{e}");
    // require with a root file verifies too (libpq: as verify-ca).
    let e = refused(&url(
        "localhost",
        &cluster,
        &format!("sslmode=require&{other_ca}"),
    ))
    .await;
    assert!(e.contains("not trusted"), "{e}");

    // 3. The right CA, but an address the certificate is not issued for:
    //    verify-full checks the name, verify-ca does not.
    let e = refused(&url(
        "127.0.0.1",
        &cluster,
        &format!("sslmode=verify-full&{ca}"),
    ))
    .await;
    assert!(e.contains("not valid for host name \"127.0.0.1\""), "{e}");
    assert!(
        e.contains("sslmode=verify-ca"),
        "the error suggests verify-ca: {e}"
    );
    let by_ip_ca = url("127.0.0.1", &cluster, &format!("sslmode=verify-ca&{ca}"));
    let store = open(&by_ip_ca).await.expect("verify-ca by IP address");
    assert!(store.tls().verifies_chain() && !store.tls().verifies_host_name());
    store.health().await.unwrap();
    assert!(server_side_ssl(&by_ip_ca).await.0);
    // ... but still refuses a CA it does not trust.
    let e = refused(&url(
        "127.0.0.1",
        &cluster,
        &format!("sslmode=verify-ca&{other_ca}"),
    ))
    .await;
    assert!(e.contains("not trusted"), "{e}");
    drop(store);

    // 4. Plaintext against a server that accepts only TLS: the server's own
    //    refusal, with the fix.
    let e = refused(&url("127.0.0.1", &cluster, "sslmode=disable")).await;
    assert!(
        e.contains("pg_hba.conf") && e.contains("no encryption"),
        "{e}"
    );
    assert!(e.contains("only over TLS: set sslmode=require"), "{e}");

    // 5. require and prefer without a root: encrypted, nothing verified
    //    (any name, any CA).
    for mode in ["require", "prefer"] {
        let u = url("127.0.0.1", &cluster, &format!("sslmode={mode}"));
        let store = open(&u).await.unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert!(!store.tls().verifies_chain());
        store.health().await.unwrap();
        assert!(server_side_ssl(&u).await.0, "{mode}: not encrypted");
    }
    // No sslmode at all is libpq's default, prefer.
    let u = format!("postgres://postgres@127.0.0.1:{}/postgres", cluster.port);
    assert_eq!(PgTls::from_url(&u).unwrap().1.mode(), PgSslMode::Prefer);
    assert!(server_side_ssl(&u).await.0);

    // The key=value form works the same way.
    let kv = format!(
        "host=localhost port={} user=postgres dbname=postgres sslmode=verify-full \
         sslrootcert='{}'",
        cluster.port,
        pki.ca.display()
    );
    open(&kv)
        .await
        .expect("key=value verify-full")
        .health()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_tls_against_a_server_without_it() {
    // A default cluster: ssl off.
    let cluster = Cluster::start_configured(|_| {});
    for mode in ["require", "verify-ca", "verify-full"] {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, new_ca("unused").0).unwrap();
        let e = refused(&url(
            "localhost",
            &cluster,
            &format!("sslmode={mode}&{}", root(&ca)),
        ))
        .await;
        assert!(e.contains("does not accept TLS connections"), "{mode}: {e}");
        assert!(e.contains("ssl on"), "{mode}: {e}");
    }
    // prefer falls back to plaintext.
    let u = url("127.0.0.1", &cluster, "sslmode=prefer");
    open(&u).await.unwrap().health().await.unwrap();
    assert!(!server_side_ssl(&u).await.0);
}

/// PostgreSQL's documented self-signed recipe (one certificate, CA:TRUE,
/// used as both the server's certificate and the root) is refused by
/// rustls; the error says why and what certificate to issue instead, and
/// `require` (no verification) still connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_signed_ca_as_the_server_certificate_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let root_file = dir.path().join("server.crt");
    let cluster = Cluster::start_configured(|c| {
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(&root_file, cert.pem()).unwrap();
        c.write_data_file("server.crt", cert.pem().as_bytes(), false);
        c.write_data_file("server.key", key.serialize_pem().as_bytes(), false);
        c.write_data_file(
            "postgresql.conf",
            b"\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n",
            true,
        );
    });
    let e = refused(&url(
        "localhost",
        &cluster,
        &format!("sslmode=verify-full&{}", root(&root_file)),
    ))
    .await;
    assert!(e.contains("presents a CA certificate"), "{e}");
    assert!(e.contains("CA:FALSE"), "says what to issue: {e}");
    let u = url("localhost", &cluster, "sslmode=require");
    open(&u).await.unwrap().health().await.unwrap();
    assert!(server_side_ssl(&u).await.0);
}

/// Parsing through the public API (the finer cases are unit tests in
/// src/postgres/tls.rs): sslmode / sslrootcert are taken out of both forms,
/// every other parameter reaches tokio-postgres, bad values are refused at
/// open with the reason.
#[tokio::test]
async fn connection_string_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, new_ca("parse").0).unwrap();

    let (pg, tls) = PgTls::from_url(&format!(
        "postgresql://ada:s3cret@db.internal:6432/face?application_name=fg&sslmode=verify-full\
         &sslrootcert={}&connect_timeout=7",
        ca.display()
    ))
    .unwrap();
    assert_eq!(tls.mode(), PgSslMode::VerifyFull);
    assert_eq!(tls.root_cert(), Some(ca.as_path()));
    assert_eq!(pg.get_user(), Some("ada"));
    assert_eq!(pg.get_password(), Some(&b"s3cret"[..]));
    assert_eq!(pg.get_dbname(), Some("face"));
    assert_eq!(pg.get_ports(), [6432]);
    assert_eq!(pg.get_application_name(), Some("fg"));
    assert_eq!(pg.get_connect_timeout(), Some(&Duration::from_secs(7)));
    assert_eq!(pg.get_ssl_mode(), tokio_postgres::config::SslMode::Require);

    let (pg, tls) = PgTls::from_url(&format!(
        "host=db.internal user=ada sslmode=verify-ca sslrootcert={} dbname=face",
        ca.display()
    ))
    .unwrap();
    assert_eq!(tls.mode(), PgSslMode::VerifyCa);
    assert!(tls.verifies_chain() && !tls.verifies_host_name());
    assert_eq!(pg.get_dbname(), Some("face"));
    assert_eq!(pg.get_user(), Some("ada"));

    let (pg, tls) = PgTls::from_url("host=h sslmode=disable").unwrap();
    assert_eq!(tls.mode(), PgSslMode::Disable);
    assert_eq!(pg.get_ssl_mode(), tokio_postgres::config::SslMode::Disable);

    for (bad, expect) in [
        ("postgres://h/db?sslmode=verify", "unknown sslmode value"),
        ("host=h sslmode=Require", "unknown sslmode value"),
        (
            "postgres://h/db?sslmode=verify-full&sslrootcert=/no/such/ca.pem",
            "cannot read sslrootcert file /no/such/ca.pem",
        ),
    ] {
        let e = open(bad).await.unwrap_err();
        assert!(matches!(e, StoreError::Internal(_)), "{bad}: {e:?}");
        assert!(e.to_string().contains(expect), "{bad}: {e}");
    }
    // The URL (with its password) is still redacted in Debug.
    let cfg = face_store::PostgresConfig::new("postgres://ada:s3cret@h/db?sslmode=require");
    assert!(!format!("{cfg:?}").contains("s3cret"));
}
