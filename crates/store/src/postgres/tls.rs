//! TLS for PostgreSQL connections: libpq's `sslmode` and `sslrootcert`, on
//! rustls (with the `ring` provider).
//!
//! This module owns everything between the configured connection string and
//! an encrypted socket: it takes `sslmode` and `sslrootcert` out of the URL
//! or key=value string (tokio-postgres's own parser accepts only
//! `disable`/`prefer`/`require` and has no `sslrootcert`), reads the root
//! certificates, picks the certificate check each mode calls for, and builds
//! the one connector that both the pool and the dedicated connections
//! (migrations, index builds) use. The handshake itself is
//! `tokio-postgres-rustls`'s (which also provides SCRAM channel binding);
//! this module wraps it only to turn rustls's failures into messages that
//! say what failed and what to change.
//!
//! | `sslmode` | TLS | certificate check |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` (default) | if the server offers it | none; as `verify-ca` when `sslrootcert` is given |
//! | `require` | required | none; as `verify-ca` when `sslrootcert` is given |
//! | `verify-ca` | required | chain to a root in `sslrootcert` |
//! | `verify-full` | required | chain, and the host name against the certificate |
//!
//! Like libpq, `verify-ca` and `verify-full` without `sslrootcert` read
//! `~/.postgresql/root.crt`, and fail at open, naming the file, when it does
//! not exist; there is no fallback to a built-in or system root store (a
//! database server's certificate is normally issued by a private CA, and
//! trusting every public CA would make `verify-ca` accept any server with a
//! public certificate). Unlike libpq, `prefer` and `require` do *not* look
//! at `~/.postgresql/root.crt`: they verify only against an `sslrootcert`
//! named in the URL, so a stray file in the home directory cannot change
//! what a deployment accepts. Environment variables (`PGSSLMODE`, ...) are
//! not read; `sslrootcert=system`, client certificates (`sslcert`,
//! `sslkey`) and `sslmode=allow` are refused with an explanation. As in
//! libpq, `sslmode` does not apply to Unix-domain sockets: a connection
//! string whose hosts are all socket directories connects without TLS.
//!
//! "No check" still means a real TLS session: the handshake signature is
//! verified against the certificate the server sent (so the session is bound
//! to that key), but nothing says the key belongs to the intended server —
//! the same guarantee libpq gives, i.e. protection from eavesdropping, not
//! from an active man in the middle.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::config::Host;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::NoTls;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::{Result, StoreError};

/// libpq's `sslmode`: whether to use TLS and what to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PgSslMode {
    /// Plaintext only.
    Disable,
    /// TLS when the server offers it, else plaintext (the default).
    #[default]
    Prefer,
    /// TLS required; the certificate is checked only against an explicit
    /// `sslrootcert` (then as [`PgSslMode::VerifyCa`]).
    Require,
    /// TLS required; the certificate must chain to a trusted root. The host
    /// name is not checked.
    VerifyCa,
    /// TLS required; the certificate must chain to a trusted root and be
    /// issued for the host name connected to.
    VerifyFull,
}

impl PgSslMode {
    /// The libpq spelling (`verify-full`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            PgSslMode::Disable => "disable",
            PgSslMode::Prefer => "prefer",
            PgSslMode::Require => "require",
            PgSslMode::VerifyCa => "verify-ca",
            PgSslMode::VerifyFull => "verify-full",
        }
    }

    /// Parses the libpq spelling; the error explains the accepted values.
    pub fn parse(value: &str) -> Result<Self> {
        Ok(match value {
            "disable" => PgSslMode::Disable,
            "prefer" => PgSslMode::Prefer,
            "require" => PgSslMode::Require,
            "verify-ca" => PgSslMode::VerifyCa,
            "verify-full" => PgSslMode::VerifyFull,
            "allow" => {
                return Err(config_error(
                    "sslmode=allow is not supported (it tries plaintext first and TLS only \
                     if the server refuses); use sslmode=prefer, or sslmode=disable",
                ))
            }
            _ => {
                // The value is not echoed: in a mis-encoded URL (a raw `@`
                // or `?` in the password) it may hold part of the password.
                return Err(config_error(
                    "unknown sslmode value: expected one of disable, prefer, require, \
                     verify-ca, verify-full",
                ));
            }
        })
    }
}

impl fmt::Display for PgSslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for PgSslMode {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self> {
        PgSslMode::parse(s)
    }
}

fn config_error(msg: impl fmt::Display) -> StoreError {
    StoreError::Internal(format!("invalid PostgreSQL URL: {msg}"))
}

/// The TLS parameters taken out of a connection string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SslParams {
    /// `sslmode`, when given.
    pub mode: Option<PgSslMode>,
    /// `sslrootcert`, when given (decoded).
    pub root_cert: Option<String>,
}

impl SslParams {
    fn set(&mut self, key: &str, value: &str) -> Result<bool> {
        match key {
            "sslmode" => self.mode = Some(PgSslMode::parse(value)?),
            "sslrootcert" => self.root_cert = Some(value.to_owned()),
            "sslcert" | "sslkey" | "sslpassword" => {
                return Err(config_error(format!(
                    "{key}: client certificates are not supported; authenticate with a \
                     password (SCRAM) over sslmode=verify-full instead"
                )))
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// Splits a libpq URL or key=value string into the string without `sslmode`
/// and `sslrootcert` (every other parameter left exactly as written) and
/// those two parameters. The grammar follows tokio-postgres's parser, so the
/// rest parses as it would have; a repeated parameter's last value wins.
pub(crate) fn split_ssl_params(url: &str) -> Result<(String, SslParams)> {
    let trimmed = url.trim_start();
    for prefix in ["postgres://", "postgresql://"] {
        if trimmed.starts_with(prefix) {
            let start = url.len() - trimmed.len() + prefix.len();
            return split_url(url, start);
        }
    }
    split_key_values(url)
}

fn percent_decode(s: &str, what: &str) -> Result<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| config_error(format!("{what} is not UTF-8 once percent-decoded")))
}

/// The parameters [`SslParams::set`] takes (or refuses).
const TLS_KEYS: [&str; 5] = ["sslmode", "sslrootcert", "sslcert", "sslkey", "sslpassword"];

/// URL form: the query starts at the first `?` after the credentials (which
/// end at the first `@`, as tokio-postgres reads them).
fn split_url(url: &str, start: usize) -> Result<(String, SslParams)> {
    let after_credentials = url[start..].find('@').map_or(start, |i| start + i + 1);
    let Some(query) = url[after_credentials..]
        .find('?')
        .map(|i| after_credentials + i)
    else {
        return Ok((url.to_owned(), SslParams::default()));
    };
    let mut params = SslParams::default();
    let mut kept = Vec::new();
    for pair in url[query + 1..].split('&').filter(|p| !p.is_empty()) {
        let taken = match pair.split_once('=') {
            Some((key, value)) => {
                let key = percent_decode(key, "a URL parameter name")?;
                if TLS_KEYS.contains(&key.as_str()) {
                    params.set(&key, &percent_decode(value, &key)?)?
                } else {
                    false
                }
            }
            None => false,
        };
        if !taken {
            kept.push(pair);
        }
    }
    let mut rest = url[..query].to_owned();
    if !kept.is_empty() {
        rest.push('?');
        rest.push_str(&kept.join("&"));
    }
    Ok((rest, params))
}

/// key=value form: `key = value` pairs separated by whitespace; a value is
/// either bare (ends at whitespace) or single-quoted, with `\` escaping the
/// next character in both.
fn split_key_values(s: &str) -> Result<(String, SslParams)> {
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    let at = |i: usize| chars.get(i).map(|&(_, c)| c);
    let offset = |i: usize| chars.get(i).map_or(s.len(), |&(o, _)| o);
    let skip_ws = |mut i: usize| {
        while at(i).is_some_and(char::is_whitespace) {
            i += 1;
        }
        i
    };
    let mut params = SslParams::default();
    let mut rest = String::with_capacity(s.len());
    let mut copied = 0; // byte offset up to which `s` is in `rest` or dropped
    let mut i = 0;
    loop {
        i = skip_ws(i);
        let start = i;
        while at(i).is_some_and(|c| !c.is_whitespace() && c != '=') {
            i += 1;
        }
        if i == start {
            break; // end of input, or a stray '=' tokio-postgres will report
        }
        let key = &s[offset(start)..offset(i)];
        i = skip_ws(i);
        if at(i) != Some('=') {
            break; // malformed: leave the rest to tokio-postgres's error
        }
        i = skip_ws(i + 1);
        let mut value = String::new();
        let quoted = at(i) == Some('\'');
        if quoted {
            i += 1;
        }
        let mut closed = !quoted;
        while let Some(c) = at(i) {
            if quoted && c == '\'' {
                i += 1;
                closed = true;
                break;
            }
            if !quoted && c.is_whitespace() {
                break;
            }
            i += 1;
            if c == '\\' {
                if let Some(next) = at(i) {
                    value.push(next);
                    i += 1;
                }
            } else {
                value.push(c);
            }
        }
        if !closed {
            break; // unterminated quote: tokio-postgres reports it
        }
        if params.set(key, &value)? {
            rest.push_str(&s[copied..offset(start)]);
            copied = offset(i);
        }
    }
    rest.push_str(&s[copied..]);
    Ok((rest, params))
}

/// How the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Handshake signature only.
    None,
    /// Chain to a trusted root, not the host name.
    Chain,
    /// Chain and host name.
    Full,
}

/// The TLS side of a PostgreSQL connection string: the mode, the roots, and
/// the connector built from them. Cheap to clone.
#[derive(Clone)]
pub struct PgTls {
    mode: PgSslMode,
    root_cert: Option<PathBuf>,
    check: Check,
    /// `None`: plaintext (`NoTls`).
    connector: Option<RustlsConnector>,
}

impl fmt::Debug for PgTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgTls")
            .field("mode", &self.mode)
            .field("root_cert", &self.root_cert)
            .field("check", &self.check)
            .field("tls", &self.connector.is_some())
            .finish()
    }
}

impl PgTls {
    /// Parses a libpq URL or key=value string: the tokio-postgres
    /// configuration (its `ssl_mode` set from `sslmode`) and the TLS
    /// connector that goes with it. Fails, naming the cause, on an unknown
    /// `sslmode`, or a root certificate file that cannot be read or holds no
    /// usable certificate.
    pub fn from_url(url: &str) -> Result<(tokio_postgres::Config, PgTls)> {
        let (rest, params) = split_ssl_params(url)?;
        let mut pg: tokio_postgres::Config = rest
            .parse()
            .map_err(|e: tokio_postgres::Error| config_error(super::errors::describe(&e)))?;
        let tls = PgTls::new(params)?;
        let sockets_only =
            !pg.get_hosts().is_empty() && pg.get_hosts().iter().all(|h| !matches!(h, Host::Tcp(_)));
        pg.ssl_mode(match tls.mode {
            // libpq: sslmode does not apply to Unix-domain sockets.
            _ if sockets_only => tokio_postgres::config::SslMode::Disable,
            PgSslMode::Disable => tokio_postgres::config::SslMode::Disable,
            PgSslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        Ok((pg, tls))
    }

    fn new(params: SslParams) -> Result<PgTls> {
        let mode = params.mode.unwrap_or_default();
        let root_cert = match (params.root_cert, mode) {
            (_, PgSslMode::Disable) => None,
            (Some(path), _) if path == "system" => {
                return Err(config_error(
                    "sslrootcert=system is not supported; give the path of a PEM file \
                     holding the CA certificate(s) that signed the server's certificate",
                ))
            }
            (Some(path), _) => Some(PathBuf::from(path)),
            (None, PgSslMode::VerifyCa | PgSslMode::VerifyFull) => Some(default_root(mode)?),
            (None, _) => None,
        };
        let check = match (mode, &root_cert) {
            (PgSslMode::VerifyFull, _) => Check::Full,
            (PgSslMode::VerifyCa, _) | (_, Some(_)) => Check::Chain,
            _ => Check::None,
        };
        let connector = match mode {
            PgSslMode::Disable => None,
            _ => Some(RustlsConnector::new(mode, root_cert.as_deref(), check)?),
        };
        Ok(PgTls {
            mode,
            root_cert,
            check,
            connector,
        })
    }

    /// The `sslmode` in effect (`prefer` when the string had none).
    pub fn mode(&self) -> PgSslMode {
        self.mode
    }

    /// The root certificate file the server's certificate is checked
    /// against, if any.
    pub fn root_cert(&self) -> Option<&Path> {
        self.root_cert.as_deref()
    }

    /// Whether the server's certificate chain is verified.
    pub fn verifies_chain(&self) -> bool {
        self.check != Check::None
    }

    /// Whether the host name is checked against the certificate.
    pub fn verifies_host_name(&self) -> bool {
        self.check == Check::Full
    }

    /// A deadpool manager whose connections use this connector.
    pub(crate) fn manager(&self, pg: tokio_postgres::Config, config: ManagerConfig) -> Manager {
        match &self.connector {
            None => Manager::from_config(pg, NoTls, config),
            Some(tls) => Manager::from_config(pg, tls.clone(), config),
        }
    }

    /// Opens one connection with `pg` (normally the configuration
    /// [`PgTls::from_url`] returned, possibly adjusted) and this connector,
    /// and drives it on a spawned task until the client is dropped. Only
    /// `pg`'s own `connect_timeout` bounds it; wrap it in a timeout.
    pub async fn connect(&self, pg: &tokio_postgres::Config) -> Result<tokio_postgres::Client> {
        match &self.connector {
            None => {
                let (client, connection) = pg.connect(NoTls).await?;
                tokio::spawn(drive(connection));
                Ok(client)
            }
            Some(tls) => {
                let (client, connection) = pg.connect(tls.clone()).await?;
                tokio::spawn(drive(connection));
                Ok(client)
            }
        }
    }
}

async fn drive<F: Future<Output = std::result::Result<(), tokio_postgres::Error>>>(connection: F) {
    if let Err(e) = connection.await {
        tracing::debug!("PostgreSQL connection ended: {e}");
    }
}

/// libpq's default root file, which must exist for the verify modes.
fn default_root(mode: PgSslMode) -> Result<PathBuf> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty());
    let Some(home) = home else {
        return Err(config_error(format!(
            "sslmode={mode} needs the CA certificate to check the server's certificate \
             against: add sslrootcert=/path/to/ca.pem (HOME is not set, so libpq's \
             default ~/.postgresql/root.crt cannot be used)"
        )));
    };
    let path = Path::new(&home).join(".postgresql").join("root.crt");
    if !path.exists() {
        return Err(config_error(format!(
            "sslmode={mode} needs the CA certificate to check the server's certificate \
             against: add sslrootcert=/path/to/ca.pem (libpq's default {} does not exist)",
            path.display()
        )));
    }
    Ok(path)
}

/// Reads the PEM certificates in `path` into a root store.
fn load_roots(path: &Path) -> Result<RootCertStore> {
    let shown = path.display();
    let pem = std::fs::read(path)
        .map_err(|e| StoreError::Internal(format!("cannot read sslrootcert file {shown}: {e}")))?;
    let mut roots = RootCertStore::empty();
    for (n, cert) in CertificateDer::pem_slice_iter(&pem).enumerate() {
        let cert = cert.map_err(|e| {
            StoreError::Internal(format!(
                "sslrootcert file {shown} is not valid PEM (certificate {}): {e}",
                n + 1
            ))
        })?;
        roots.add(cert).map_err(|e| {
            StoreError::Internal(format!(
                "sslrootcert file {shown}: certificate {} cannot be used as a root: {e}",
                n + 1
            ))
        })?;
    }
    if roots.is_empty() {
        return Err(StoreError::Internal(format!(
            "sslrootcert file {shown} holds no certificate: expected PEM \
             (-----BEGIN CERTIFICATE-----) with the CA that signed the server's certificate"
        )));
    }
    Ok(roots)
}

/// What a failed handshake is explained with.
#[derive(Debug)]
struct Context {
    mode: PgSslMode,
    root_cert: Option<PathBuf>,
}

impl Context {
    fn roots(&self) -> String {
        self.root_cert.as_ref().map_or_else(
            || "no sslrootcert".to_owned(),
            |p| format!("sslrootcert {}", p.display()),
        )
    }

    /// Rewrites a handshake error into one that says what failed and what
    /// to do about it.
    fn explain(&self, host: &str, e: io::Error) -> io::Error {
        let mode = self.mode;
        let rustls_error = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
        let msg = match rustls_error {
            Some(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => format!(
                "the PostgreSQL server's certificate is not valid for host name {host:?} \
                 ({e}); sslmode={mode} checks the host name against the certificate's \
                 subjectAltName entries (unlike libpq, its common name is not used): connect \
                 with a name the certificate was issued for, reissue it with that name as a \
                 subjectAltName, or use sslmode=verify-ca to check only that a trusted CA \
                 signed it"
            ),
            Some(rustls::Error::InvalidCertificate(why)) => {
                let fix = match why {
                    CertificateError::Expired
                    | CertificateError::ExpiredContext { .. }
                    | CertificateError::NotValidYet
                    | CertificateError::NotValidYetContext { .. } => {
                        "the server's certificate is outside its validity period: renew \
                         it (or check this machine's clock)"
                    }
                    // webpki refuses a CA certificate as the server's own,
                    // which is what PostgreSQL's documented self-signed
                    // recipe (openssl req -x509, server.crt as the root)
                    // makes. rustls reports it as an "other" error.
                    other if format!("{other:?}").contains("CaUsedAsEndEntity") => {
                        "the server presents a CA certificate (basicConstraints CA:TRUE) as \
                         its own, which rustls refuses: issue the server a certificate \
                         (CA:FALSE, subjectAltName = its host name) signed by a CA, and give \
                         that CA's certificate as sslrootcert"
                    }
                    _ => {
                        "make sure that file holds the CA certificate that signed the \
                         server's certificate"
                    }
                };
                format!(
                    "the PostgreSQL server's certificate at {host:?} is not trusted ({e}), \
                     checked against {} for sslmode={mode}: {fix}",
                    self.roots()
                )
            }
            Some(other) => format!(
                "TLS handshake with the PostgreSQL server at {host:?} failed \
                 (sslmode={mode}): {other}"
            ),
            None if e.kind() == io::ErrorKind::InvalidInput => {
                format!("host name {host:?} cannot be used for TLS (sslmode={mode}): {e}")
            }
            None => format!(
                "TLS handshake with the PostgreSQL server at {host:?} failed \
                 (sslmode={mode}): {e}"
            ),
        };
        io::Error::new(e.kind(), msg)
    }
}

/// tokio-postgres-rustls's connector with its errors explained.
#[derive(Clone)]
struct RustlsConnector {
    inner: MakeRustlsConnect,
    context: Arc<Context>,
}

impl RustlsConnector {
    fn new(mode: PgSslMode, root_cert: Option<&Path>, check: Check) -> Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match (check, root_cert) {
            (Check::None, _) => Arc::new(NoCertificateCheck {
                provider: provider.clone(),
            }),
            (_, None) => {
                return Err(StoreError::Internal(format!(
                    "sslmode={mode}: no root certificate to verify against"
                )))
            }
            (check, Some(path)) => {
                let roots = Arc::new(load_roots(path)?);
                let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                    .build()
                    .map_err(|e| {
                        StoreError::Internal(format!("sslrootcert file {}: {e}", path.display()))
                    })?;
                match check {
                    Check::Full => webpki,
                    _ => Arc::new(ChainOnly { inner: webpki }),
                }
            }
        };
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError::Internal(format!("TLS setup: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        // PostgreSQL 17's ALPN name (required there with direct negotiation).
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(RustlsConnector {
            inner: MakeRustlsConnect::new(config),
            context: Arc::new(Context {
                mode,
                root_cert: root_cert.map(Path::to_path_buf),
            }),
        })
    }
}

type Inner<S> = <MakeRustlsConnect as MakeTlsConnect<S>>::TlsConnect;
type Stream<S> = <MakeRustlsConnect as MakeTlsConnect<S>>::Stream;

impl<S> MakeTlsConnect<S> for RustlsConnector
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type TlsConnect = Handshake<S>;
    type Error = Infallible;

    fn make_tls_connect(&mut self, host: &str) -> std::result::Result<Handshake<S>, Infallible> {
        let inner = MakeTlsConnect::<S>::make_tls_connect(&mut self.inner, host)?;
        Ok(Handshake {
            inner,
            host: host.to_owned(),
            context: self.context.clone(),
        })
    }
}

/// One pending handshake.
struct Handshake<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    inner: Inner<S>,
    host: String,
    context: Arc<Context>,
}

impl<S> TlsConnect<S> for Handshake<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Stream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let Handshake {
            inner,
            host,
            context,
        } = self;
        let handshake = inner.connect(stream);
        Box::pin(async move { handshake.await.map_err(|e| context.explain(&host, e)) })
    }
}

/// `prefer`/`require` without a root: any certificate, but the handshake
/// must be signed by the key in the certificate the server presented.
#[derive(Debug)]
struct NoCertificateCheck {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for NoCertificateCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `verify-ca`: webpki's full check, except that a certificate issued for
/// another name is accepted. rustls checks the name last, after the chain,
/// validity period and usage, so a name error means everything else passed.
#[derive(Debug)]
struct ChainOnly {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[rustls::DistinguishedName]> {
        self.inner.root_hint_subjects()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn split(s: &str) -> (String, SslParams) {
        split_ssl_params(s).unwrap()
    }

    fn params(mode: Option<PgSslMode>, root: Option<&str>) -> SslParams {
        SslParams {
            mode,
            root_cert: root.map(str::to_owned),
        }
    }

    #[test]
    fn url_params_are_taken_out_and_the_rest_kept() {
        let (rest, p) = split(
            "postgres://u:p%40ss@db.example:5433/face?connect_timeout=5&sslmode=verify-full\
             &sslrootcert=%2Fetc%2Fca%20dir%2Fca.pem&application_name=x",
        );
        assert_eq!(
            rest,
            "postgres://u:p%40ss@db.example:5433/face?connect_timeout=5&application_name=x"
        );
        assert_eq!(
            p,
            params(Some(PgSslMode::VerifyFull), Some("/etc/ca dir/ca.pem"))
        );
        // The rest parses, with the other parameters intact.
        let pg: tokio_postgres::Config = rest.parse().unwrap();
        assert_eq!(pg.get_dbname(), Some("face"));
        assert_eq!(
            pg.get_connect_timeout(),
            Some(&std::time::Duration::from_secs(5))
        );
        assert_eq!(pg.get_application_name(), Some("x"));
    }

    #[test]
    fn url_without_tls_params_is_unchanged() {
        for url in [
            "postgres://u@h/db",
            "postgresql://u@h:5432/db?connect_timeout=3",
            "postgres:///db?host=/var/run/postgresql",
        ] {
            assert_eq!(split(url), (url.to_owned(), SslParams::default()), "{url}");
        }
        let (rest, p) = split("postgres://h/db?sslmode=require");
        assert_eq!(rest, "postgres://h/db");
        assert_eq!(p, params(Some(PgSslMode::Require), None));
        // A '?' in the password (before the '@') does not start the query.
        let (rest, p) = split("postgres://u:a?b@h/db?sslmode=disable");
        assert_eq!(rest, "postgres://u:a?b@h/db");
        assert_eq!(p.mode, Some(PgSslMode::Disable));
    }

    #[test]
    fn key_value_params_are_taken_out_and_the_rest_kept() {
        let (rest, p) = split(
            "host=h sslmode=verify-ca  sslrootcert = '/etc/my ca/it\\'s.pem' dbname=face \
             password='a b'",
        );
        assert_eq!(rest, "host=h    dbname=face password='a b'");
        assert_eq!(
            p,
            params(Some(PgSslMode::VerifyCa), Some("/etc/my ca/it's.pem"))
        );
        let pg: tokio_postgres::Config = rest.parse().unwrap();
        assert_eq!(pg.get_dbname(), Some("face"));
        assert_eq!(pg.get_password(), Some(&b"a b"[..]));

        let (rest, p) = split("sslrootcert=/a\\ b.pem host=h sslmode=require");
        assert_eq!(rest, " host=h ");
        assert_eq!(p, params(Some(PgSslMode::Require), Some("/a b.pem")));

        let plain = "host=h user=u dbname=d";
        assert_eq!(split(plain), (plain.to_owned(), SslParams::default()));
    }

    #[test]
    fn last_value_wins() {
        let (_, p) = split("postgres://h/db?sslmode=require&sslmode=verify-full");
        assert_eq!(p.mode, Some(PgSslMode::VerifyFull));
        let (_, p) = split("sslmode=require sslmode=disable");
        assert_eq!(p.mode, Some(PgSslMode::Disable));
    }

    #[test]
    fn bad_sslmode_is_refused_with_the_accepted_values() {
        for s in [
            "postgres://h/db?sslmode=verify_full",
            "host=h sslmode=strict",
        ] {
            let e = split_ssl_params(s).unwrap_err().to_string();
            assert!(e.contains("unknown sslmode"), "{e}");
            assert!(e.contains("verify-ca, verify-full"), "{e}");
        }
        let e = split_ssl_params("host=h sslmode=allow")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sslmode=allow is not supported"), "{e}");
        let e = split_ssl_params("postgres://h/db?sslcert=/c.pem")
            .unwrap_err()
            .to_string();
        assert!(e.contains("client certificates are not supported"), "{e}");
    }

    #[test]
    fn modes_map_to_checks_and_tokio_modes() {
        use tokio_postgres::config::SslMode;
        let (pg, tls) = PgTls::from_url("postgres://h/db").unwrap();
        assert_eq!(
            (tls.mode(), pg.get_ssl_mode()),
            (PgSslMode::Prefer, SslMode::Prefer)
        );
        assert!(!tls.verifies_chain());
        let (pg, tls) = PgTls::from_url("host=h sslmode=disable").unwrap();
        assert_eq!(pg.get_ssl_mode(), SslMode::Disable);
        assert!(tls.connector.is_none());
        let (pg, tls) = PgTls::from_url("host=h sslmode=require").unwrap();
        assert_eq!(pg.get_ssl_mode(), SslMode::Require);
        assert!(!tls.verifies_chain() && tls.root_cert().is_none());
        // Sockets: libpq ignores sslmode there.
        let (pg, _) = PgTls::from_url("host=/var/run/postgresql sslmode=require").unwrap();
        assert_eq!(pg.get_ssl_mode(), SslMode::Disable);
    }

    #[test]
    fn unreadable_or_empty_root_file_is_refused_naming_it() {
        let e = PgTls::from_url("host=h sslmode=verify-full sslrootcert=/nonexistent/ca.pem")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cannot read sslrootcert file /nonexistent/ca.pem"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = PgTls::from_url(&format!(
            "host=h sslmode=verify-ca sslrootcert={}",
            empty.display()
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("holds no certificate"), "{e}");
        assert!(e.contains(&empty.display().to_string()), "{e}");
        let e = PgTls::from_url("host=h sslmode=require sslrootcert=system")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sslrootcert=system is not supported"), "{e}");
    }
}
