//! Loading ONNX Runtime and opening sessions on the chosen execution
//! provider.
//!
//! ONNX Runtime is loaded from a shared library at run time (the `ort`
//! crate's `load-dynamic`), so nothing is downloaded at build time and one
//! binary runs on the CPU library or, unchanged, on the CUDA one
//! (`onnxruntime-gpu`). The library can be loaded once per process, so the
//! environment lives in a process-wide cell: the first pipeline built loads
//! it, later ones reuse it.
//!
//! Where the library is looked for, in order: the configured path,
//! `$ORT_DYLIB_PATH`, `./runtime/libonnxruntime.so`,
//! `$XDG_DATA_HOME/facegate/runtime` (default `~/.local/share/...`),
//! `/usr/local/share/facegate/runtime`, `/usr/share/facegate/runtime`.
//! `scripts/fetch-onnxruntime.sh` fills the first of the directories.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;
use ort::ep::ExecutionProvider;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use serde::{Deserialize, Serialize};

use crate::FaceError;

/// The ONNX Runtime release this build was written against (the `ort`
/// crate's API level); older libraries are refused when loaded.
pub const ORT_VERSION: &str = "1.31";

/// The library's file name.
pub const LIBRARY_NAME: &str = "libonnxruntime.so";

/// Where inference runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// ONNX Runtime's CPU kernels. Always available.
    #[default]
    Cpu,
    /// NVIDIA CUDA (needs the `onnxruntime-gpu` library and a GPU). Falls
    /// back to the CPU, with a warning, where it cannot be used.
    Cuda,
}

impl Provider {
    /// The provider's name as settings and `/stats/` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Cpu => "cpu",
            Provider::Cuda => "cuda",
        }
    }
}

/// How sessions are run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeOptions {
    /// Path of `libonnxruntime.so`; `None` for the search order above.
    pub library: Option<PathBuf>,
    /// Execution provider asked for.
    pub provider: Provider,
    /// CUDA device index, with `provider = cuda`.
    pub cuda_device: i32,
    /// Threads inside one inference. A server runs one pipeline per worker
    /// thread already, so 1 keeps workers from competing for cores.
    pub intra_threads: usize,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            library: None,
            provider: Provider::Cpu,
            cuda_device: 0,
            intra_threads: 1,
        }
    }
}

/// The loaded runtime, shared by every session of the process.
struct Loaded {
    environment: Environment,
    library: PathBuf,
}

/// Process-wide: ONNX Runtime allows one library per process. A `Mutex`
/// around the cell so two threads building pipelines at once load it once.
fn loaded() -> &'static Mutex<Option<Loaded>> {
    static CELL: OnceLock<Mutex<Option<Loaded>>> = OnceLock::new();
    CELL.get_or_init(|| Mutex::new(None))
}

/// The directories and files searched for the library, in order.
pub fn library_candidates(configured: Option<&Path>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = configured {
        out.push(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        out.push(PathBuf::from(p));
    }
    out.push(PathBuf::from("runtime").join(LIBRARY_NAME));
    let data_home = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")));
    if let Some(d) = data_home {
        out.push(d.join("facegate/runtime").join(LIBRARY_NAME));
    }
    out.push(PathBuf::from("/usr/local/share/facegate/runtime").join(LIBRARY_NAME));
    out.push(PathBuf::from("/usr/share/facegate/runtime").join(LIBRARY_NAME));
    out
}

/// Loads the library (once per process) and returns the path it came from.
pub fn ensure_loaded(options: &RuntimeOptions) -> Result<PathBuf, FaceError> {
    let mut cell = loaded().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(l) = cell.as_ref() {
        if let Some(asked) = options.library.as_deref() {
            if asked != l.library {
                tracing::warn!(
                    asked = %asked.display(),
                    loaded = %l.library.display(),
                    "ONNX Runtime is already loaded from another file; one library per process, \
                     keeping the first"
                );
            }
        }
        return Ok(l.library.clone());
    }
    let candidates = library_candidates(options.library.as_deref());
    let Some(library) = candidates.iter().find(|p| p.is_file()).cloned() else {
        return Err(FaceError::RuntimeUnavailable {
            reason: format!(
                "{LIBRARY_NAME} not found (looked at: {})",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            version: ORT_VERSION,
        });
    };
    let environment = ort::init_from(&library)
        .map_err(|e| FaceError::RuntimeUnavailable {
            reason: format!("{}: {e}", library.display()),
            version: ORT_VERSION,
        })?
        .with_name("facegate")
        .build()
        .map_err(|e| FaceError::RuntimeUnavailable {
            reason: format!("{}: {e}", library.display()),
            version: ORT_VERSION,
        })?;
    tracing::info!(library = %library.display(), "ONNX Runtime loaded");
    *cell = Some(Loaded {
        environment,
        library: library.clone(),
    });
    Ok(library)
}

/// A session on `model` and the provider it actually runs on.
pub struct OpenedSession {
    /// The session.
    pub session: Session,
    /// The provider in use (CPU when CUDA was asked for but is unusable).
    pub provider: Provider,
}

/// Opens `model` with the options' provider, falling back to the CPU with a
/// warning when CUDA is asked for and cannot be used.
pub fn open_session(model: &Path, options: &RuntimeOptions) -> Result<OpenedSession, FaceError> {
    ensure_loaded(options)?;
    let cell = loaded().lock().unwrap_or_else(|e| e.into_inner());
    let env = match cell.as_ref() {
        Some(l) => l.environment.clone(),
        None => {
            return Err(FaceError::RuntimeUnavailable {
                reason: "the runtime was not loaded".into(),
                version: ORT_VERSION,
            })
        }
    };
    drop(cell);

    if options.provider == Provider::Cuda {
        match open_with(model, options, &env, true) {
            Ok(session) => {
                return Ok(OpenedSession {
                    session,
                    provider: Provider::Cuda,
                })
            }
            Err(e) => tracing::warn!(
                model = %model.display(),
                error = %e,
                "the CUDA execution provider cannot be used (is this the onnxruntime-gpu \
                 library, with CUDA and cuDNN installed and a GPU present?); falling back to the CPU"
            ),
        }
    }
    let session = open_with(model, options, &env, false)?;
    Ok(OpenedSession {
        session,
        provider: Provider::Cpu,
    })
}

fn open_with(
    model: &Path,
    options: &RuntimeOptions,
    env: &Environment,
    cuda: bool,
) -> Result<Session, FaceError> {
    let fail = |e: String| FaceError::Backend {
        backend: "onnx",
        message: format!("cannot open {}: {e}", model.display()),
    };
    let mut builder = Session::builder(env)
        .map_err(|e| fail(e.to_string()))?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(|e| fail(e.to_string()))?
        .with_intra_threads(options.intra_threads.max(1))
        .map_err(|e| fail(e.to_string()))?;
    if cuda {
        let available = ort::ep::CUDA::is_available().unwrap_or(false);
        if !available {
            return Err(fail(
                "this ONNX Runtime library was built without CUDA".into(),
            ));
        }
        builder = builder
            .with_execution_providers([ort::ep::CUDA::default()
                .with_device_id(options.cuda_device)
                .build()
                .error_on_failure()])
            .map_err(|e| fail(e.to_string()))?;
    }
    builder
        .commit_from_file(model)
        .map_err(|e| fail(e.to_string()))
}

/// The name and shape of a model's image input, checked to be
/// `[batch, 3, height, width]` (any dimension may be dynamic, `-1`).
pub fn image_input(session: &Session, path: &Path) -> Result<(String, Vec<i64>), FaceError> {
    let unfit = |reason: String| FaceError::ModelUnfit {
        path: path.to_path_buf(),
        reason,
    };
    let input = session
        .inputs()
        .first()
        .ok_or_else(|| unfit("the model has no input".into()))?;
    let shape: Vec<i64> = input
        .dtype()
        .tensor_shape()
        .map(|s| s.iter().copied().collect())
        .unwrap_or_default();
    if shape.len() != 4 || !(shape[1] == 3 || shape[1] < 0) {
        return Err(unfit(format!(
            "expected an image input [batch, 3, height, width], found {shape:?}"
        )));
    }
    Ok((input.name().to_string(), shape))
}

/// A custom metadata value of the model (`key` in its metadata_props).
pub fn metadata(session: &Session, key: &str) -> Option<String> {
    session.metadata().ok()?.custom(key)
}
