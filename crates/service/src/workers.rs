//! A bounded pool of face-pipeline threads.
//!
//! Face work is CPU-bound and the dlib models are not thread-safe, so each
//! worker thread owns one `FacePipeline` and takes jobs from one bounded
//! queue. When the queue is full the caller gets `Busy` at once instead of
//! waiting: latency stays bounded under overload and the client is told to
//! retry (HTTP 503 with Retry-After). The async side awaits a oneshot reply,
//! so no runtime thread ever blocks on a face; the caller's tracing span is
//! carried into the worker.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crossbeam_channel::{bounded, Sender, TrySendError};
use face_core::{FacePipeline, ModelInfo};

use crate::ServiceError;

type Job = Box<dyn FnOnce(&mut FacePipeline) + Send>;

/// Worker threads, each with its own pipeline, behind one bounded queue.
pub struct FaceWorkers {
    queue: Sender<Job>,
    model: Arc<ModelInfo>,
    detector: String,
    execution: String,
    threads: usize,
}

impl FaceWorkers {
    /// Starts one thread per pipeline. `queue_depth` jobs may wait beyond
    /// those being processed. All pipelines must run the same model.
    pub fn start(pipelines: Vec<FacePipeline>, queue_depth: usize) -> Result<Self, ServiceError> {
        let first = pipelines
            .first()
            .ok_or_else(|| ServiceError::Internal("at least one face worker is needed".into()))?;
        let model = first.model().clone();
        let detector = first.detector_name().to_string();
        let execution = first.execution().to_string();
        if pipelines.iter().any(|p| p.model().id != model.id) {
            return Err(ServiceError::Internal(
                "face workers run different models".into(),
            ));
        }
        let (tx, rx) = bounded::<Job>(queue_depth);
        let threads = pipelines.len();
        for (i, mut pipeline) in pipelines.into_iter().enumerate() {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("face-worker-{i}"))
                .spawn(move || {
                    for job in rx.iter() {
                        // A panic in one job must not take the worker down;
                        // the job's caller sees its reply channel close.
                        let _ = catch_unwind(AssertUnwindSafe(|| job(&mut pipeline)));
                    }
                })
                .map_err(|e| ServiceError::Internal(format!("cannot start face worker: {e}")))?;
        }
        Ok(Self {
            queue: tx,
            model,
            detector,
            execution,
            threads,
        })
    }

    /// The embedding model the workers run.
    pub fn model(&self) -> &Arc<ModelInfo> {
        &self.model
    }

    /// The detector's name.
    pub fn detector(&self) -> &str {
        &self.detector
    }

    /// Where the embedder runs (`"cpu"`, `"cuda"`).
    pub fn execution(&self) -> &str {
        &self.execution
    }

    /// Number of worker threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `f` on a worker's pipeline; `Busy` when the queue is full.
    pub async fn run<T, F>(&self, f: F) -> Result<T, ServiceError>
    where
        T: Send + 'static,
        F: FnOnce(&mut FacePipeline) -> T + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let span = tracing::Span::current();
        let job: Job = Box::new(move |pipeline| {
            let _entered = span.enter();
            let _ = tx.send(f(pipeline));
        });
        self.queue.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => ServiceError::Busy,
            TrySendError::Disconnected(_) => ServiceError::Internal("face workers stopped".into()),
        })?;
        rx.await.map_err(|_| {
            ServiceError::Internal("a face worker failed while processing the image".into())
        })
    }
}
