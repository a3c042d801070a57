//! Embeddings on disk, so that a rerun of the evaluation is instant.
//!
//! One file per model and primary detector,
//! `<cache dir>/<model_id>.<detector>.bin` (the detector changes which face
//! crop is embedded, so it is part of the key). Entries are keyed by the
//! image's path relative to the dataset directory; images missing from the
//! file are embedded and added, so an interrupted run resumes where it
//! stopped. The format is a small versioned binary, little-endian:
//!
//! ```text
//! magic "FGEMBED\0", u32 version (1),
//! str model_id, u32 dimension, str metric, str detector, f64 compute_seconds,
//! u32 count, count × { str path, u8 source, 4 × f32 bbox, dimension × f32 }
//! str = u32 byte length + UTF-8
//! ```
//! Written to a temporary file and renamed, so a crash never leaves a torn
//! cache. A file whose header names another model, dimension, metric or
//! detector is refused rather than mixed.

use std::collections::BTreeMap;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use face_core::ModelInfo;

use crate::backend::{Embedded, Source};
use crate::Result;

const MAGIC: &[u8; 8] = b"FGEMBED\0";
const VERSION: u32 = 1;

/// The embeddings of one model and detector.
#[derive(Debug, Clone)]
pub struct Cache {
    /// The model id.
    pub model_id: String,
    /// Vector length.
    pub dimension: usize,
    /// The model's metric name.
    pub metric: String,
    /// The primary detector's tag.
    pub detector: String,
    /// Seconds spent computing the embeddings now in the cache, summed over
    /// the runs that added them (the cost a fresh run would pay).
    pub compute_seconds: f64,
    /// Entries by relative image path.
    pub entries: BTreeMap<String, Embedded>,
}

impl Cache {
    /// `<dir>/<model_id>.<detector>.bin`.
    pub fn path(dir: &Path, model_id: &str, detector: &str) -> PathBuf {
        dir.join(format!("{model_id}.{detector}.bin"))
    }

    /// An empty cache for `model` and `detector`.
    pub fn new(model: &ModelInfo, detector: &str) -> Self {
        Self {
            model_id: model.id.clone(),
            dimension: model.dimension,
            metric: model.metric.as_str().to_string(),
            detector: detector.to_string(),
            compute_seconds: 0.0,
            entries: BTreeMap::new(),
        }
    }

    /// The cache at `path`, or an empty one when there is no file. Fails
    /// when the file is unreadable or for another model or detector.
    pub fn load_or_new(path: &Path, model: &ModelInfo, detector: &str) -> Result<Self> {
        if !path.exists() {
            return Ok(Self::new(model, detector));
        }
        let cache = Self::load(path)?;
        let expected = Self::new(model, detector);
        if cache.model_id != expected.model_id
            || cache.dimension != expected.dimension
            || cache.metric != expected.metric
            || cache.detector != expected.detector
        {
            return Err(format!(
                "{} holds {} {}-D {} / {}, not {} {}-D {} / {}: remove it or use another --cache",
                path.display(),
                cache.model_id,
                cache.dimension,
                cache.metric,
                cache.detector,
                expected.model_id,
                expected.dimension,
                expected.metric,
                expected.detector
            )
            .into());
        }
        Ok(cache)
    }

    /// Reads a cache file.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut r = Reader(&bytes[..]);
        let mut magic = [0u8; 8];
        r.0.read_exact(&mut magic)?;
        if &magic != MAGIC {
            return Err(format!("{} is not an embedding cache", path.display()).into());
        }
        let version = r.u32()?;
        if version != VERSION {
            return Err(format!(
                "{}: cache version {version}, expected {VERSION}",
                path.display()
            )
            .into());
        }
        let model_id = r.string()?;
        let dimension = r.u32()? as usize;
        let metric = r.string()?;
        let detector = r.string()?;
        let compute_seconds = r.f64()?;
        let count = r.u32()?;
        let mut entries = BTreeMap::new();
        for _ in 0..count {
            let key = r.string()?;
            let source = Source::from_u8(r.u8()?).ok_or("bad source byte in cache")?;
            let mut bbox = [0f32; 4];
            for b in &mut bbox {
                *b = r.f32()?;
            }
            let values = (0..dimension)
                .map(|_| r.f32())
                .collect::<Result<Vec<_>>>()?;
            entries.insert(
                key,
                Embedded {
                    values,
                    source,
                    bbox,
                },
            );
        }
        Ok(Self {
            model_id,
            dimension,
            metric,
            detector,
            compute_seconds,
            entries,
        })
    }

    /// Writes the cache atomically (temporary file, then rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let tmp = path.with_extension("bin.tmp");
        {
            let file = std::fs::File::create(&tmp)
                .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
            let mut w = BufWriter::new(file);
            w.write_all(MAGIC)?;
            w.write_all(&VERSION.to_le_bytes())?;
            write_str(&mut w, &self.model_id)?;
            w.write_all(&(self.dimension as u32).to_le_bytes())?;
            write_str(&mut w, &self.metric)?;
            write_str(&mut w, &self.detector)?;
            w.write_all(&self.compute_seconds.to_le_bytes())?;
            w.write_all(&(self.entries.len() as u32).to_le_bytes())?;
            for (key, e) in &self.entries {
                write_str(&mut w, key)?;
                w.write_all(&[e.source as u8])?;
                for v in e.bbox.iter().chain(&e.values) {
                    w.write_all(&v.to_le_bytes())?;
                }
            }
            w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        }
        std::fs::rename(&tmp, path)
            .map_err(|e| format!("cannot move {} into place: {e}", tmp.display()))?;
        Ok(())
    }
}

fn write_str(w: &mut impl Write, s: &str) -> std::io::Result<()> {
    w.write_all(&(s.len() as u32).to_le_bytes())?;
    w.write_all(s.as_bytes())
}

/// Little-endian reads from a byte slice.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut buf = [0u8; N];
        self.0
            .read_exact(&mut buf)
            .map_err(|_| "embedding cache is truncated")?;
        Ok(buf)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take()?))
    }
    fn f32(&mut self) -> Result<f32> {
        Ok(f32::from_le_bytes(self.take()?))
    }
    fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.take()?))
    }
    fn string(&mut self) -> Result<String> {
        let n = self.u32()? as usize;
        if n > self.0.len() {
            return Err("embedding cache is truncated".into());
        }
        let (s, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(String::from_utf8(s.to_vec())?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip() {
        let model = face_core::dlib::ResnetEmbedder::model_info();
        let mut c = Cache::new(&model, "dlib-hog");
        c.compute_seconds = 1.5;
        c.entries.insert(
            "A/A_0001.jpg".into(),
            Embedded {
                values: (0..128).map(|i| i as f32 / 7.0).collect(),
                source: Source::CentralBox,
                bbox: [1.0, 2.0, 3.0, 4.0],
            },
        );
        let dir = std::env::temp_dir().join(format!("fgeval-cache-{}", std::process::id()));
        let path = Cache::path(&dir, &model.id, "dlib-hog");
        c.save(&path).unwrap();
        let back = Cache::load_or_new(&path, &model, "dlib-hog").unwrap();
        assert_eq!(back.entries, c.entries);
        assert_eq!(back.compute_seconds, 1.5);
        assert!(Cache::load_or_new(&path, &model, "dlib-cnn").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
