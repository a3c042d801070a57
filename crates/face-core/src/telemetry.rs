//! The pipeline's metrics: how long each stage took, by backend.
//!
//! Emitted through the `metrics` facade, which does nothing until the
//! program that embeds face-core installs a recorder (the FaceGate server
//! installs a Prometheus one); face-core itself knows no exporter, no HTTP
//! and no labels beyond the stage and the backend. Only durations leave
//! here: nothing of the image or the face.

use std::time::Duration;

use crate::pipeline::StageTimings;

/// The histogram of stage durations (seconds), labelled `stage` (`decode`,
/// `resize`, `detect`, `pad` when liveness was asked, `embed`; the service
/// adds `search`) and `backend`.
pub const STAGE_SECONDS: &str = "facegate_pipeline_stage_duration_seconds";

/// Records one stage.
pub fn stage(stage: &'static str, backend: &'static str, took: Duration) {
    metrics::histogram!(STAGE_SECONDS, "stage" => stage, "backend" => backend)
        .record(took.as_secs_f64());
}

/// Records the stages one pipeline call ran: from bytes, decoding (which
/// scales inside the decoder); from pixels, the working copy's resize
/// (near zero when the image was small enough).
pub(crate) fn stages(backend: &'static str, t: &StageTimings, decoded: bool) {
    if decoded {
        stage("decode", backend, t.decode);
    } else {
        stage("resize", backend, t.resize);
    }
    stage("detect", backend, t.detect);
    stage("embed", backend, t.embed);
}
