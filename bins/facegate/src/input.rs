//! Request bodies: JSON with base64 images (optionally `data:image/...;base64,`
//! prefixed), or `multipart/form-data` uploads. Both become the same
//! [`ImageRequest`], so handlers do not care which the client sent.
//!
//! Before a body is read it reserves its size from the server-wide budget
//! of in-flight body bytes ([`BodyBudget`], `server.max_inflight_body_bytes`):
//! a body is held as bytes, then as base64 text, then decoded, about four
//! times its size, before any face-worker limit applies, so without a budget
//! fifty 10 MB uploads would hold 2 GB. A full budget answers 503 `busy`
//! with `Retry-After` at once; the reservation is returned when the request
//! ends.

use std::sync::Arc;

use actix_multipart::Multipart;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, HttpRequest};
use base64::Engine;
use futures_util::StreamExt;
use serde::Deserialize;

use crate::error::ApiError;

/// The server-wide budget of request-body bytes in flight.
#[derive(Debug, Clone)]
pub struct BodyBudget {
    /// Largest accepted body.
    pub limit: usize,
    /// KiB of bodies in flight, as semaphore permits.
    inflight: Arc<tokio::sync::Semaphore>,
    /// The budget, KiB.
    total_kib: u32,
}

impl BodyBudget {
    /// At most `limit` bytes per body and `inflight` bytes of bodies at once.
    pub fn new(limit: usize, inflight: usize) -> Self {
        let total_kib = u32::try_from(inflight.div_ceil(1024)).unwrap_or(u32::MAX);
        Self {
            limit,
            inflight: Arc::new(tokio::sync::Semaphore::new(total_kib as usize)),
            total_kib,
        }
    }

    /// Reserves room for a body of `bytes` (the declared length, or the
    /// limit when none is declared); 503 `busy` when the budget is full.
    fn reserve(&self, bytes: usize) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        let kib = u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, self.total_kib.max(1));
        Arc::clone(&self.inflight)
            .try_acquire_many_owned(kib)
            .map_err(|_| {
                metrics::counter!(crate::metrics::BODIES_REJECTED).increment(1);
                ApiError::from(face_service::ServiceError::Busy)
            })
    }
}

/// The fields any image endpoint may receive.
#[derive(Debug, Default)]
pub struct ImageRequest {
    /// `name` (register).
    pub name: Option<String>,
    /// Decoded images, in order.
    pub images: Vec<Vec<u8>>,
    /// `external_ref` (register).
    pub external_ref: Option<String>,
    /// `metadata` (register).
    pub metadata: Option<serde_json::Value>,
    /// `allow_duplicate`.
    pub allow_duplicate: bool,
    /// `liveness_token` (verify): a passed challenge session's token. In
    /// the body, not the URL, so it stays out of access logs.
    pub liveness_token: Option<String>,
    /// The body's share of the in-flight budget, held until the request
    /// ends (images are moved out; this stays).
    pub reservation: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// Unknown fields are ignored, as the reference service (pydantic) does,
/// so its clients work unchanged.
#[derive(Debug, Deserialize)]
struct JsonBody {
    name: Option<String>,
    image: Option<String>,
    images: Option<Vec<String>>,
    external_ref: Option<String>,
    metadata: Option<serde_json::Value>,
    #[serde(default)]
    allow_duplicate: bool,
    liveness_token: Option<String>,
}

/// Most images in one request.
pub const MAX_IMAGES: usize = 10;

/// Decodes a base64 image, with or without a `data:` URL prefix and line
/// breaks.
pub fn decode_base64(field: &str, text: &str) -> Result<Vec<u8>, ApiError> {
    let payload = match text.strip_prefix("data:") {
        Some(rest) => match rest.split_once(',') {
            Some((meta, data)) if meta.ends_with(";base64") => data,
            _ => {
                return Err(ApiError::bad_image(format!(
                    "{field}: a data URL must look like data:image/jpeg;base64,..."
                )))
            }
        },
        None => text,
    };
    let clean: String = payload
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if clean.is_empty() {
        return Err(ApiError::bad_image(format!("{field}: the image is empty")));
    }
    base64::engine::general_purpose::STANDARD
        .decode(clean.as_bytes())
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(clean.as_bytes()))
        .or_else(|_| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(clean.trim_end_matches('=').as_bytes())
        })
        .map_err(|e| ApiError::bad_image(format!("{field}: not valid base64 ({e})")))
}

/// Reads an image request from a JSON or multipart body.
pub async fn read(
    req: &HttpRequest,
    payload: web::Payload,
    budget: &BodyBudget,
) -> Result<ImageRequest, ApiError> {
    let (payload, reservation) = reserve(req, payload, budget).await?;
    let mut body = read_unreserved(req, payload, budget.limit).await?;
    body.reservation = Some(reservation);
    Ok(body)
}

/// The body's share of the in-flight budget, reserved before it is read.
async fn reserve(
    req: &HttpRequest,
    payload: web::Payload,
    budget: &BodyBudget,
) -> Result<(web::Payload, tokio::sync::OwnedSemaphorePermit), ApiError> {
    let limit = budget.limit;
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    match budget.reserve(declared.unwrap_or(limit)) {
        Ok(r) => Ok((payload, r)),
        Err(busy) => {
            // Read the body to the end without keeping it, so the client
            // gets its 503 rather than a connection reset mid-upload.
            discard(payload, limit).await;
            Err(busy)
        }
    }
}

/// The frames of a challenge session's answer: a multipart body of `frame`
/// files in order and one `timestamps` field (the frames' capture times,
/// milliseconds, comma separated, one per frame).
pub async fn read_frames(
    req: &HttpRequest,
    payload: web::Payload,
    budget: &BodyBudget,
) -> Result<(Vec<(Vec<u8>, u64)>, tokio::sync::OwnedSemaphorePermit), ApiError> {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !content_type.starts_with("multipart/form-data") {
        return Err(ApiError::new(
            actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the frames as multipart/form-data: `frame` files in order and a \
             `timestamps` field",
        ));
    }
    let (payload, reservation) = reserve(req, payload, budget).await?;
    let mut form = Multipart::new(req.headers(), payload.into_inner());
    let (mut frames, mut timestamps, mut total) = (Vec::new(), None, 0usize);
    while let Some((name, data)) = next_field(&mut form, &mut total, budget.limit).await? {
        match name.as_str() {
            "frame" => frames.push(data),
            "timestamps" => {
                let text = String::from_utf8(data)
                    .map_err(|_| ApiError::invalid("timestamps", "must be UTF-8 text"))?;
                let parsed: Result<Vec<u64>, _> =
                    text.split(',').map(|t| t.trim().parse::<u64>()).collect();
                timestamps = Some(parsed.map_err(|_| {
                    ApiError::invalid("timestamps", "milliseconds, comma separated")
                })?);
            }
            other => return Err(ApiError::invalid(other, "unknown form field")),
        }
    }
    let timestamps = timestamps
        .ok_or_else(|| ApiError::invalid("timestamps", "one capture time per frame is required"))?;
    if frames.is_empty() || timestamps.len() != frames.len() {
        return Err(ApiError::invalid(
            "timestamps",
            format!(
                "{} frames and {} timestamps: send at least one frame, and one time per frame",
                frames.len(),
                timestamps.len()
            ),
        ));
    }
    Ok((frames.into_iter().zip(timestamps).collect(), reservation))
}

async fn read_unreserved(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<ImageRequest, ApiError> {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("application/json") {
        read_json(payload, limit).await
    } else if content_type.starts_with("multipart/form-data") {
        read_multipart(req, payload, limit).await
    } else {
        Err(ApiError::new(
            actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "Content-Type {:?} is not accepted; send application/json with a base64 image, or multipart/form-data",
                content_type
            ),
        ))
    }
}

/// Reads and drops up to `limit` bytes of a body.
async fn discard(mut payload: web::Payload, limit: usize) {
    let mut seen = 0usize;
    while let Some(Ok(chunk)) = payload.next().await {
        seen += chunk.len();
        if seen > limit {
            break;
        }
    }
}

async fn read_body(mut payload: web::Payload, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_image(format!("reading the body failed: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

pub fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the request body is larger than the limit of {limit} bytes"),
    )
    .details(serde_json::json!({ "limit": limit }))
}

async fn read_json(payload: web::Payload, limit: usize) -> Result<ImageRequest, ApiError> {
    let body = read_body(payload, limit).await?;
    parse_json(&body)
}

/// A JSON request body (`name`, `image` or `images` as base64, ...), parsed
/// and decoded. Pure, so the fuzz target `request` drives it directly.
/// serde_json's recursion limit (128) refuses deeply nested documents with
/// an error, not a stack overflow.
pub fn parse_json(body: &[u8]) -> Result<ImageRequest, ApiError> {
    let parsed: JsonBody = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_json",
            format!("the JSON body is invalid: {e}"),
        )
    })?;
    let mut images = Vec::new();
    if let Some(one) = &parsed.image {
        images.push(decode_base64("image", one)?);
    }
    for (i, text) in parsed.images.iter().flatten().enumerate() {
        images.push(decode_base64(&format!("images[{i}]"), text)?);
    }
    check_count(images.len())?;
    Ok(ImageRequest {
        name: parsed.name,
        images,
        external_ref: parsed.external_ref,
        metadata: parsed.metadata,
        allow_duplicate: parsed.allow_duplicate,
        liveness_token: parsed.liveness_token,
        reservation: None,
    })
}

/// The one image of a request that takes exactly one.
pub fn single(mut images: Vec<Vec<u8>>) -> Result<Vec<u8>, ApiError> {
    if images.len() != 1 {
        return Err(ApiError::invalid("image", "exactly one image per request"));
    }
    Ok(images.remove(0))
}

fn check_count(n: usize) -> Result<(), ApiError> {
    if n == 0 {
        return Err(ApiError::invalid(
            "image",
            "an image is required (base64 in \"image\", or \"images\")",
        ));
    }
    if n > MAX_IMAGES {
        return Err(ApiError::invalid(
            "images",
            format!("at most {MAX_IMAGES} images per request"),
        ));
    }
    Ok(())
}

/// The next field of a multipart body, its name and bytes; `total` counts
/// the bytes read so far against `limit`.
async fn next_field(
    form: &mut Multipart,
    total: &mut usize,
    limit: usize,
) -> Result<Option<(String, Vec<u8>)>, ApiError> {
    let malformed = |e: actix_multipart::MultipartError| {
        ApiError::bad_image(format!("malformed multipart body: {e}"))
    };
    let Some(field) = form.next().await else {
        return Ok(None);
    };
    let mut field = field.map_err(malformed)?;
    let name = field.name().unwrap_or("").to_string();
    let mut data = Vec::new();
    while let Some(chunk) = field.next().await {
        let chunk = chunk.map_err(malformed)?;
        *total += chunk.len();
        if *total > limit {
            return Err(too_large(limit));
        }
        data.extend_from_slice(&chunk);
    }
    Ok(Some((name, data)))
}

async fn read_multipart(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<ImageRequest, ApiError> {
    let mut form = Multipart::new(req.headers(), payload.into_inner());
    let mut out = ImageRequest::default();
    let mut total = 0usize;
    while let Some((name, data)) = next_field(&mut form, &mut total, limit).await? {
        let text = || {
            String::from_utf8(data.clone())
                .map_err(|_| ApiError::invalid(&name, "must be UTF-8 text"))
        };
        match name.as_str() {
            "image" | "images" | "file" | "files" => out.images.push(data),
            "name" => out.name = Some(text()?),
            "external_ref" => out.external_ref = Some(text()?),
            "metadata" => {
                out.metadata = Some(
                    serde_json::from_str(&text()?).map_err(|e| ApiError::invalid("metadata", e))?,
                )
            }
            "allow_duplicate" => {
                out.allow_duplicate = matches!(text()?.trim(), "true" | "1" | "yes")
            }
            "liveness_token" => out.liveness_token = Some(text()?.trim().to_string()),
            other => return Err(ApiError::invalid(other, "unknown form field")),
        }
    }
    check_count(out.images.len())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn base64_with_and_without_data_prefix() {
        assert_eq!(decode_base64("image", "aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("image", "aGVsbG8").unwrap(), b"hello");
        assert_eq!(
            decode_base64("image", "data:image/png;base64,aGVs\nbG8=").unwrap(),
            b"hello"
        );
        assert!(decode_base64("image", "data:image/png,aGVsbG8=").is_err());
        assert!(decode_base64("image", "not base64 !!").is_err());
        assert!(decode_base64("image", "").is_err());
    }
}
