//! Switching the embedding model on a running deployment: people enrolled
//! under dlib are listed for re-enrolment by the ONNX server (over HTTP and
//! by the `facegate reenrolment` admin command), cannot be verified until
//! they have a template of the new model, and can be once they do; the old
//! model's templates stay usable by a dlib server on the same data.
#![allow(clippy::unwrap_used)]

mod common;

use facegate::settings::StoreKind;
use serde_json::json;

fn ids(list: &serde_json::Value) -> Vec<i64> {
    list["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_of_the_old_model_are_reported_and_re_enrolled() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_path_buf();
    let mut dlib = common::spawn_with(StoreKind::Sqlite, |s| s.store.data_dir = dir.clone())
        .await
        .unwrap();
    let (status, obama) = dlib
        .register("Barack Obama", "people/obama/face_recognition_obama.jpg")
        .await;
    assert_eq!(status, 200, "{obama}");
    let obama = obama["user_id"].as_i64().unwrap();
    let (status, biden) = dlib
        .register("Joe Biden", "people/biden/face_recognition_biden.jpg")
        .await;
    assert_eq!(status, 200, "{biden}");
    let biden = biden["user_id"].as_i64().unwrap();
    let (_, none) = dlib.get("/admin/reenrolment").await;
    assert_eq!(none["count"], 0, "{none}");

    // The same data under the ONNX backend (one server at a time on a
    // SQLite directory: the dlib one stops first).
    dlib.stop().await;
    let mut onnx = common::spawn_with(StoreKind::Sqlite, |s| {
        s.store.data_dir = dir.clone();
        common::use_onnx(s);
    })
    .await
    .unwrap();
    let (status, report) = onnx.get("/admin/reenrolment").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["model"], common::ONNX_MODEL.0);
    assert_eq!(ids(&report), vec![obama, biden]);
    let (_, stats) = onnx.get("/stats/").await;
    assert_eq!(stats["total_users"], 2);
    assert_eq!(stats["total_templates"], 0, "{stats}");
    // The old model's templates are kept (and reported) for switching back.
    assert_eq!(
        stats["templates_of_other_models"],
        json!({ common::DLIB_MODEL.0: 2 }),
        "{stats}"
    );

    // Not verifiable, not identifiable until re-enrolled.
    let (status, v) = onnx
        .verify(obama, "people/obama/face_recognition_obama3.jpg")
        .await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["error"], "no_template_for_model");
    let (status, rec) = onnx
        .recognize("people/obama/face_recognition_obama2.jpg")
        .await;
    assert_eq!(status, 200, "{rec}");
    assert_eq!(rec["match"], false, "{rec}");

    // Re-enrolment: a new photo adds a template of the active model. There
    // is nothing of that model to verify it against, so only an
    // administrator may add it: an `enrol` key could otherwise give anyone's
    // account its own face.
    let (_, enrol) = onnx.new_key("enrolment desk", &["enrol"]).await;
    let res = common::client_with_key(&enrol)
        .post(onnx.url(&format!("/users/{obama}/faces")))
        .json(&json!({ "image": common::b64(&common::photo("people/obama/face_recognition_obama1.jpg")) }))
        .send()
        .await
        .unwrap();
    let (status, refused) = common::read(res).await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["details"]["needed_scope"], "admin", "{refused}");
    let (status, added) = onnx
        .post_json(
            &format!("/users/{obama}/faces"),
            json!({ "image": common::b64(&common::photo("people/obama/face_recognition_obama1.jpg")) }),
        )
        .await;
    assert_eq!(status, 200, "{added}");
    assert_eq!(added["template_count"], 2, "one dlib template, one ONNX");
    let (_, audit) = onnx
        .get(&format!("/admin/audit?user_id={obama}&limit=5"))
        .await;
    let outcomes: Vec<(&str, &str)> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        &outcomes[..2],
        &[
            ("add_faces", "admin_first_template_of_model"),
            ("add_faces", "refused")
        ],
        "{audit}"
    );
    let (_, report) = onnx.get("/admin/reenrolment").await;
    assert_eq!(ids(&report), vec![biden]);
    let (status, v) = onnx
        .verify(obama, "people/obama/face_recognition_obama3.jpg")
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["match"], true, "{v}");
    let (_, rec) = onnx
        .recognize("people/obama/face_recognition_obama2.jpg")
        .await;
    assert_eq!(rec["user_id"], obama, "{rec}");

    // Paging: one per page.
    let (_, page) = onnx.get("/admin/reenrolment?limit=1").await;
    assert_eq!(ids(&page), vec![biden]);
    let (status, bad) = onnx.get("/admin/reenrolment?limit=0").await;
    assert_eq!(status, 422, "{bad}");

    // The admin command prints the same report.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_facegate"))
        .arg("reenrolment")
        .current_dir(common::workspace())
        .env("FACEGATE__STORE__DATA_DIR", &dir)
        .env("FACEGATE__FACE__BACKEND", "onnx")
        .env(
            "FACEGATE__FACE__MODELS_DIR",
            common::shared().join("models/onnx"),
        )
        .env(
            "FACEGATE__FACE__ONNX__DETECTOR__MODEL",
            "yunet_s_640_640.onnx",
        )
        .env(
            "FACEGATE__FACE__ONNX__EMBEDDER__MODEL",
            "mobilefacenet_128d.onnx",
        )
        .env(
            "ORT_DYLIB_PATH",
            std::env::var_os("ORT_DYLIB_PATH")
                .unwrap_or_else(|| common::workspace().join("runtime/libonnxruntime.so").into()),
        )
        .env("FACEGATE__LOG__LEVEL", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        vec![format!("{biden}\tJoe Biden\t1")],
        "{stdout}\n{stderr}"
    );
    assert!(stderr.contains("1 users have no template"), "{stderr}");

    // Back on dlib, the server still verifies with its own templates.
    onnx.stop().await;
    let dlib = common::spawn_with(StoreKind::Sqlite, |s| s.store.data_dir = dir.clone())
        .await
        .unwrap();
    let (status, v) = dlib
        .verify(obama, "people/obama/face_recognition_obama3.jpg")
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["match"], true, "{v}");
}

/// A calibration applies to the pipeline it was measured with: the same
/// embedder behind another normalisation, or the dlib model behind its
/// other detector, refuses to start, naming both pipelines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calibration_measured_with_another_pipeline_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = common::settings(dir.path());
    common::use_onnx(&mut s);
    s.face.onnx.embedder.std = Some(127.5);
    let err = facegate::startup::Application::build(s)
        .await
        .err()
        .expect("a calibration for another normalisation is refused")
        .to_string();
    assert!(err.contains("mobilefacenet_128d_85cdeb73"), "{err}");
    assert!(
        err.contains("(x - 127.5) / 128"),
        "names the calibrated pipeline: {err}"
    );
    assert!(
        err.contains("(x - 127.5) / 127.5"),
        "names the running pipeline: {err}"
    );

    let mut s = common::settings(dir.path());
    s.face.detector = facegate::settings::DetectorSetting::Cnn;
    let err = facegate::startup::Application::build(s)
        .await
        .err()
        .expect("dlib's HOG calibration is refused for the CNN detector")
        .to_string();
    assert!(
        err.contains("dlib-hog") && err.contains("dlib-cnn"),
        "{err}"
    );
}

/// The default pipeline's files are checked at startup: a copy of
/// `./models` with one byte of SFace flipped refuses to start, naming the
/// file and what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_default_model_refuses_to_start() {
    let models = tempfile::tempdir().unwrap();
    for file in ["yunet_2023mar.onnx", "sface_2021dec.onnx"] {
        let from = common::workspace().join("models").join(file);
        std::fs::copy(&from, models.path().join(file))
            .unwrap_or_else(|e| panic!("{}: {e} (run scripts/setup.sh)", from.display()));
    }
    let sface = models.path().join("sface_2021dec.onnx");
    let mut bytes = std::fs::read(&sface).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&sface, bytes).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut s = common::settings(dir.path());
    common::use_default_pipeline(&mut s);
    s.face.models_dir = models.path().display().to_string();
    let err = facegate::startup::Application::build(s)
        .await
        .err()
        .expect("a damaged model is refused")
        .to_string();
    assert!(err.contains("sface_2021dec.onnx"), "names the file: {err}");
    assert!(err.contains("corrupt"), "{err}");
    assert!(err.contains("scripts/setup.sh"), "says what to do: {err}");
}

/// Calibrations of one model for two pipelines live side by side: the
/// pipeline's own `<model_id>@<tag>.json` is used when it exists, so dlib's
/// CNN detector can have its own thresholds beside HOG's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_uses_its_own_calibration_file_beside_the_models() {
    use face_core::calibration::Calibration;
    let cal_dir = tempfile::tempdir().unwrap();
    let shipped = common::workspace().join("config/calibration/dlib_resnet_v1.json");
    std::fs::copy(&shipped, cal_dir.path().join("dlib_resnet_v1.json")).unwrap();
    let cnn = face_core::dlib::fingerprint(face_core::dlib::DetectorKind::Cnn);
    let mut own = Calibration::load(&shipped).unwrap();
    own.pipeline = cnn.clone();
    // A marker to see which file was read.
    own.evidence.dataset = "CNN copy for the test".into();
    let dest = own.destination_in(cal_dir.path()).unwrap();
    assert_eq!(
        dest.file_name().unwrap().to_string_lossy(),
        format!("dlib_resnet_v1@{}.json", cnn.tag()),
        "the HOG file is kept; the CNN one goes beside it"
    );
    std::fs::write(&dest, own.to_json_pretty().unwrap()).unwrap();

    let Some(app) = common::spawn_with(facegate::settings::StoreKind::Sqlite, |s| {
        s.face.detector = facegate::settings::DetectorSetting::Cnn;
        s.thresholds.calibration_dir = cal_dir.path().to_path_buf();
    })
    .await
    else {
        return;
    };
    let (status, stats) = app.get("/stats/").await;
    assert_eq!(status, 200, "{stats}");
    assert!(
        stats["thresholds"]["source"]
            .as_str()
            .unwrap()
            .contains("CNN copy for the test"),
        "{stats}"
    );
}
