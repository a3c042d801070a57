//! Which pipeline embeds the dataset, and what happens when it finds no face.
//!
//! Everything after this module sees only vectors and a
//! [`face_core::ModelInfo`]; the pipeline is chosen here by a flag
//! (`--backend`, `--detector`). Another backend (e.g. ONNX) adds a
//! [`BackendKind`] variant and one arm in [`BackendSpec::build`], returning
//! the same [`LfwEmbedder`] made of face-core's generic [`FacePipeline`] and
//! [`Embedder`] types.
//!
//! No-face policy (no silent drops): LFW guarantees one face centred in
//! each 250×250 image. When the chosen detector finds nothing, the image is
//! tried with the second detector (CNN when the primary is HOG); when that
//! finds nothing too, the face is embedded from a fixed central box (the
//! median box the detector draws on LFW). Every image thus gets an
//! embedding, and each fallback is recorded per image so the report counts
//! them. Of several faces, the one nearest the image centre is LFW's subject.

use std::path::PathBuf;
use std::sync::Arc;

use face_core::backend::{self, BackendConfig};
use face_core::calibration::PipelineFingerprint;
use face_core::dlib::{self, DetectorKind};
use face_core::models::ModelLocator;
use face_core::onnx::{self, HeadKind, OnnxOptions};
use face_core::{
    decode, BoundingBox, DetectedFace, Embedder, FacePipeline, LandmarkScheme, Landmarks,
    ModelInfo, PipelineOptions, Point,
};

use crate::Result;

/// How an image's embedding was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Source {
    /// The chosen detector found the face.
    Primary = 0,
    /// The chosen detector found none; the second detector did.
    Secondary = 1,
    /// Neither detector found a face; embedded from LFW's central box.
    CentralBox = 2,
}

impl Source {
    /// From the byte stored in the cache.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Source::Primary),
            1 => Some(Source::Secondary),
            2 => Some(Source::CentralBox),
            _ => None,
        }
    }
}

/// One image's embedding and how it was found.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedded {
    /// The vector.
    pub values: Vec<f32>,
    /// Which stage of the no-face policy produced it.
    pub source: Source,
    /// The face box used: left, top, width, height in image pixels.
    pub bbox: [f32; 4],
}

/// The central box of a 250×250 deep-funneled LFW image, as fractions of
/// the image side: left, top, width, height. The median of the boxes the
/// HOG detector draws on LFW (measured by this tool over the 13,162 images
/// where HOG found the face; reported as `median_detected_box_fraction`),
/// so a fallback face is cropped as a detected one would be.
pub const LFW_CENTRAL_BOX: [f32; 4] = [0.269, 0.319, 0.434, 0.434];

/// The embedding backends the command knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// dlib: HOG or CNN detector, 5-point landmarks, ResNet 128-D encoder.
    Dlib,
    /// ONNX: YuNet (or SCRFD) detector, ArcFace-family embedder, as
    /// configured by [`BackendSpec::onnx`].
    Onnx,
}

impl BackendKind {
    /// From the `--backend` flag.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "dlib" => Ok(BackendKind::Dlib),
            "onnx" => Ok(BackendKind::Onnx),
            other => Err(format!("unknown backend {other:?} (known: dlib, onnx)").into()),
        }
    }
}

/// The ONNX no-face policy's second try: the same detector at this score
/// threshold (the first uses the configured one, 0.9 by default).
pub const ONNX_SECOND_SCORE_THRESHOLD: f32 = 0.3;

/// What to build in each worker thread.
#[derive(Debug, Clone)]
pub struct BackendSpec {
    /// The backend.
    pub kind: BackendKind,
    /// The primary detector.
    pub detector: DetectorKind,
    /// A models directory to search first (else face-core's search order).
    pub models_dir: Option<PathBuf>,
    /// The ONNX backend's models and parameters (with `kind = Onnx`).
    pub onnx: OnnxOptions,
}

impl BackendSpec {
    /// A short name of the primary detector, used in cache file names.
    pub fn detector_tag(&self) -> &'static str {
        match (self.kind, self.detector) {
            (BackendKind::Dlib, DetectorKind::Hog) => "dlib-hog",
            (BackendKind::Dlib, DetectorKind::Cnn) => "dlib-cnn",
            (BackendKind::Onnx, _) => match self.onnx.detector.kind {
                HeadKind::Yunet => "onnx-yunet",
                HeadKind::Scrfd => "onnx-scrfd",
            },
        }
    }

    /// What the no-face policy tries second, as the report names it.
    pub fn secondary_tag(&self) -> Option<String> {
        match (self.kind, self.detector) {
            (BackendKind::Dlib, DetectorKind::Hog) => Some("dlib-cnn".into()),
            (BackendKind::Dlib, DetectorKind::Cnn) => None,
            (BackendKind::Onnx, _) => Some(format!(
                "{} at score threshold {ONNX_SECOND_SCORE_THRESHOLD}",
                self.detector_tag()
            )),
        }
    }

    /// The primary pipeline's configuration, for face-core's factory.
    pub fn config(&self) -> BackendConfig {
        match self.kind {
            BackendKind::Dlib => BackendConfig::Dlib {
                detector: self.detector,
            },
            BackendKind::Onnx => BackendConfig::Onnx(Box::new(self.onnx.clone())),
        }
    }

    /// The model the primary pipeline embeds with and the fingerprint of
    /// that pipeline (written into the calibration); builds it once.
    pub fn identify(&self) -> Result<(ModelInfo, PipelineFingerprint)> {
        let built = backend::build(
            &self.config(),
            &self.locator(),
            PipelineOptions::default(),
            1,
        )?;
        let model = built
            .pipelines
            .first()
            .map(|p| p.model().as_ref().clone())
            .ok_or("the factory built no pipeline")?;
        Ok((model, built.fingerprint))
    }

    /// `count` primary pipelines with `options` (e.g. the server's
    /// enrolment quality policy) and their fingerprint, from face-core's
    /// factory.
    pub fn pipelines(&self, options: PipelineOptions, count: usize) -> Result<backend::Built> {
        Ok(backend::build(
            &self.config(),
            &self.locator(),
            options,
            count,
        )?)
    }

    /// The primary pipeline with the passive liveness detector, and what a
    /// liveness calibration of it is measured with.
    pub fn pad_pipeline(
        &self,
    ) -> Result<(
        FacePipeline,
        face_core::liveness::calibration::PadFingerprint,
    )> {
        let locator = self.locator();
        let mut built = backend::build(&self.config(), &locator, PipelineOptions::default(), 1)?;
        let fingerprint = backend::add_pad(&mut built, &locator, &self.onnx.runtime)?;
        let pipeline = built
            .pipelines
            .pop()
            .ok_or("the factory built no pipeline")?;
        Ok((pipeline, fingerprint))
    }

    /// The primary pipeline, from face-core's factory (as the server
    /// builds its own).
    fn primary(&self, locator: &ModelLocator) -> Result<FacePipeline> {
        Ok(
            backend::build(&self.config(), locator, PipelineOptions::default(), 1)?
                .pipelines
                .pop()
                .ok_or("the factory built no pipeline")?,
        )
    }

    fn locator(&self) -> ModelLocator {
        ModelLocator::new(self.models_dir.as_deref())
    }

    /// Loads the models: one [`LfwEmbedder`] per worker thread.
    pub fn build(&self) -> Result<LfwEmbedder> {
        let locator = self.locator();
        match self.kind {
            BackendKind::Dlib => {
                let primary = self.primary(&locator)?;
                let models = dlib::DlibModels::locate(&locator)?;
                let central = Box::new(dlib::ResnetEmbedder::new(
                    &models.resnet,
                    &models.landmarks,
                )?);
                let secondary: Option<SecondaryFactory> = match self.detector {
                    DetectorKind::Hog => Some(Box::new(move || {
                        Ok(dlib::pipeline(
                            &locator,
                            DetectorKind::Cnn,
                            PipelineOptions::default(),
                        )?)
                    })),
                    DetectorKind::Cnn => None,
                };
                Ok(LfwEmbedder::new(
                    primary,
                    secondary,
                    central,
                    dlib_placeholder_landmarks,
                ))
            }
            BackendKind::Onnx => {
                let models = onnx::OnnxModels::locate(&locator, &self.onnx)?;
                let options = PipelineOptions::default();
                let primary = self.primary(&locator)?;
                let mut second = self.onnx.clone();
                second.detector.score_threshold = ONNX_SECOND_SCORE_THRESHOLD;
                let (_, central) = onnx::parts(&models, &self.onnx)?;
                let make: SecondaryFactory = Box::new(move || {
                    let (detector, embedder) = onnx::parts(&models, &second)?;
                    Ok(FacePipeline::new(
                        Box::new(detector),
                        Box::new(embedder),
                        options,
                    ))
                });
                Ok(LfwEmbedder::new(
                    primary,
                    Some(make),
                    Box::new(central),
                    template_landmarks,
                ))
            }
        }
    }
}

/// How the central-box fallback places landmarks inside the box.
pub type CentralLandmarks = fn(&BoundingBox) -> Landmarks;

/// dlib's encoder finds its own landmarks inside the box: placeholders at
/// its centre.
fn dlib_placeholder_landmarks(bbox: &BoundingBox) -> Landmarks {
    Landmarks {
        scheme: LandmarkScheme::Dlib5,
        points: [bbox.center(); 5],
    }
}

/// ArcFace alignment needs five points: the template's, mapped into the
/// box (the template's 112×112 chip spread over the box), i.e. the average
/// face where LFW's funnelling puts it.
fn template_landmarks(bbox: &BoundingBox) -> Landmarks {
    Landmarks {
        scheme: LandmarkScheme::ArcFace5,
        points: face_core::align::ARCFACE_TEMPLATE_112.map(|p| {
            Point::new(
                bbox.left + p.x / 112.0 * bbox.width,
                bbox.top + p.y / 112.0 * bbox.height,
            )
        }),
    }
}

/// Builds the second detector's pipeline on first need.
pub type SecondaryFactory = Box<dyn Fn() -> Result<FacePipeline> + Send>;

/// A pipeline with LFW's no-face policy. Generic over face-core's
/// [`FacePipeline`] and [`Embedder`]: nothing here is dlib-specific.
pub struct LfwEmbedder {
    primary: FacePipeline,
    secondary: Option<FacePipeline>,
    make_secondary: Option<SecondaryFactory>,
    central: Box<dyn Embedder>,
    central_landmarks: CentralLandmarks,
}

impl LfwEmbedder {
    /// `central` must be the same model as `primary`'s embedder.
    pub fn new(
        primary: FacePipeline,
        make_secondary: Option<SecondaryFactory>,
        central: Box<dyn Embedder>,
        central_landmarks: CentralLandmarks,
    ) -> Self {
        Self {
            primary,
            secondary: None,
            make_secondary,
            central,
            central_landmarks,
        }
    }

    /// The embedding model.
    pub fn model(&self) -> Arc<ModelInfo> {
        self.primary.model().clone()
    }

    /// Embeds LFW's subject in one image.
    pub fn embed(&mut self, bytes: &[u8]) -> Result<Embedded> {
        if let Some(e) = subject(&mut self.primary, bytes, Source::Primary)? {
            return Ok(e);
        }
        if self.secondary.is_none() {
            if let Some(make) = &self.make_secondary {
                self.secondary = Some(make()?);
            }
        }
        if let Some(secondary) = self.secondary.as_mut() {
            if let Some(e) = subject(secondary, bytes, Source::Secondary)? {
                return Ok(e);
            }
        }
        let image = decode(bytes, &Default::default())?.image;
        let (w, h) = (image.width() as f32, image.height() as f32);
        let [l, t, bw, bh] = LFW_CENTRAL_BOX;
        let bbox = BoundingBox {
            left: l * w,
            top: t * h,
            width: bw * w,
            height: bh * h,
        };
        let face = DetectedFace {
            bbox,
            score: 0.0,
            landmarks: (self.central_landmarks)(&bbox),
        };
        let mut out = self.central.embed(&image, &[face])?;
        let embedding = out.pop().ok_or("central-box embedding returned nothing")?;
        Ok(Embedded {
            values: embedding.into_values(),
            source: Source::CentralBox,
            bbox: [bbox.left, bbox.top, bbox.width, bbox.height],
        })
    }
}

/// The face nearest the image centre, if the pipeline finds any.
fn subject(pipeline: &mut FacePipeline, bytes: &[u8], source: Source) -> Result<Option<Embedded>> {
    let analysis = pipeline.analyze(bytes)?;
    let centre = Point::new(analysis.width as f32 / 2.0, analysis.height as f32 / 2.0);
    let off = |b: &BoundingBox| {
        let c = b.center();
        (c.x - centre.x).powi(2) + (c.y - centre.y).powi(2)
    };
    let best = analysis
        .faces
        .into_iter()
        .min_by(|a, b| off(&a.detection.bbox).total_cmp(&off(&b.detection.bbox)));
    Ok(best.map(|f| {
        let b = f.detection.bbox;
        Embedded {
            values: f.embedding.into_values(),
            source,
            bbox: [b.left, b.top, b.width, b.height],
        }
    }))
}
