//! Safe wrappers over the C ABI of `cpp/detect_shim.cpp`.
//!
//! Owns the raw detector handles and the only `unsafe` calls into the shim.
//! Each handle is `Send` (dlib objects may move between threads) but not
//! `Sync` (they must not be used from two threads at once); `&mut self`
//! on every call enforces that.

use std::ffi::{c_char, c_void, CStr, CString};
use std::path::Path;
use std::ptr::NonNull;

use image::RgbImage;

use crate::geometry::BoundingBox;
use crate::FaceError;

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct RawDetection {
    left: f64,
    top: f64,
    right: f64,
    bottom: f64,
    score: f64,
}

extern "C" {
    fn fg_hog_new(err: *mut c_char, err_len: usize) -> *mut c_void;
    fn fg_hog_free(detector: *mut c_void);
    fn fg_hog_detect(
        detector: *mut c_void,
        rgb: *const u8,
        width: usize,
        height: usize,
        upsample: u32,
        adjust_threshold: f64,
        out: *mut RawDetection,
        cap: usize,
        err: *mut c_char,
        err_len: usize,
    ) -> i64;
    fn fg_cnn_open(path: *const c_char, err: *mut c_char, err_len: usize) -> *mut c_void;
    fn fg_cnn_free(net: *mut c_void);
    fn fg_cnn_detect(
        net: *mut c_void,
        rgb: *const u8,
        width: usize,
        height: usize,
        upsample: u32,
        out: *mut RawDetection,
        cap: usize,
        err: *mut c_char,
        err_len: usize,
    ) -> i64;
}

/// More faces than this in one photo are not reported (a crowd photo is not
/// an enrolment or a login).
const MAX_DETECTIONS: usize = 512;
const ERR_LEN: usize = 512;

/// A box and its score, as the shim reports them.
pub(crate) struct RawFace {
    pub bbox: BoundingBox,
    pub score: f32,
}

fn err_string(buf: &[c_char]) -> String {
    // SAFETY: the buffer is zero-initialised and the shim writes at most
    // len-1 bytes followed by a NUL, so it always holds a C string.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

fn collect(
    n: i64,
    raw: &[RawDetection],
    err: &[c_char],
    backend: &'static str,
) -> Result<Vec<RawFace>, FaceError> {
    if n < 0 {
        return Err(FaceError::Backend {
            backend,
            message: err_string(err),
        });
    }
    let n = (n as usize).min(raw.len());
    Ok(raw[..n]
        .iter()
        .map(|d| RawFace {
            bbox: BoundingBox::from_edges(
                d.left as f32,
                d.top as f32,
                d.right as f32,
                d.bottom as f32,
            ),
            score: d.score as f32,
        })
        .collect())
}

/// dlib's HOG frontal face detector.
pub(crate) struct HogHandle(NonNull<c_void>);

// SAFETY: the detector owns plain heap data with no thread affinity; the
// type is not Sync and every use takes `&mut self`.
unsafe impl Send for HogHandle {}

impl HogHandle {
    pub fn new() -> Result<Self, FaceError> {
        let mut err = [0 as c_char; ERR_LEN];
        // SAFETY: err is a writable buffer of ERR_LEN bytes.
        let ptr = unsafe { fg_hog_new(err.as_mut_ptr(), ERR_LEN) };
        NonNull::new(ptr)
            .map(HogHandle)
            .ok_or_else(|| FaceError::Backend {
                backend: "dlib-hog",
                message: err_string(&err),
            })
    }

    pub fn detect(
        &mut self,
        image: &RgbImage,
        upsample: u32,
        adjust: f64,
    ) -> Result<Vec<RawFace>, FaceError> {
        let mut out = vec![RawDetection::default(); MAX_DETECTIONS];
        let mut err = [0 as c_char; ERR_LEN];
        // SAFETY: the handle is live; the image buffer holds width*height*3
        // tightly packed bytes (RgbImage guarantees it); out and err are
        // writable for the lengths passed.
        let n = unsafe {
            fg_hog_detect(
                self.0.as_ptr(),
                image.as_raw().as_ptr(),
                image.width() as usize,
                image.height() as usize,
                upsample,
                adjust,
                out.as_mut_ptr(),
                out.len(),
                err.as_mut_ptr(),
                ERR_LEN,
            )
        };
        collect(n, &out, &err, "dlib-hog")
    }
}

impl Drop for HogHandle {
    fn drop(&mut self) {
        // SAFETY: created by fg_hog_new and freed exactly once.
        unsafe { fg_hog_free(self.0.as_ptr()) }
    }
}

/// dlib's CNN (MMOD) face detector network.
pub(crate) struct CnnHandle(NonNull<c_void>);

// SAFETY: as for HogHandle.
unsafe impl Send for CnnHandle {}

impl CnnHandle {
    pub fn open(path: &Path) -> Result<Self, FaceError> {
        let c_path = path_to_cstring(path)?;
        let mut err = [0 as c_char; ERR_LEN];
        // SAFETY: c_path is a valid C string; err is writable.
        let ptr = unsafe { fg_cnn_open(c_path.as_ptr(), err.as_mut_ptr(), ERR_LEN) };
        NonNull::new(ptr)
            .map(CnnHandle)
            .ok_or_else(|| FaceError::ModelCorrupt {
                path: path.to_path_buf(),
                reason: err_string(&err),
            })
    }

    pub fn detect(&mut self, image: &RgbImage, upsample: u32) -> Result<Vec<RawFace>, FaceError> {
        let mut out = vec![RawDetection::default(); MAX_DETECTIONS];
        let mut err = [0 as c_char; ERR_LEN];
        // SAFETY: as in HogHandle::detect.
        let n = unsafe {
            fg_cnn_detect(
                self.0.as_ptr(),
                image.as_raw().as_ptr(),
                image.width() as usize,
                image.height() as usize,
                upsample,
                out.as_mut_ptr(),
                out.len(),
                err.as_mut_ptr(),
                ERR_LEN,
            )
        };
        collect(n, &out, &err, "dlib-cnn")
    }
}

impl Drop for CnnHandle {
    fn drop(&mut self) {
        // SAFETY: created by fg_cnn_open and freed exactly once.
        unsafe { fg_cnn_free(self.0.as_ptr()) }
    }
}

/// dlib takes paths as C strings; refuse what cannot be one instead of
/// letting the crate panic on it.
pub(crate) fn path_to_cstring(path: &Path) -> Result<CString, FaceError> {
    let s = path.to_str().ok_or_else(|| FaceError::ModelCorrupt {
        path: path.to_path_buf(),
        reason: "the path is not valid UTF-8; move the model to a plain path".into(),
    })?;
    CString::new(s).map_err(|_| FaceError::ModelCorrupt {
        path: path.to_path_buf(),
        reason: "the path contains a NUL byte".into(),
    })
}
