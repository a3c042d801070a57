//! A bounded pool of face-pipeline threads.
//!
//! Face work is CPU-bound and the dlib models are not thread-safe, so each
//! worker thread owns one `FacePipeline` and takes jobs from one bounded
//! queue. When the queue is full the caller gets `Busy` at once instead of
//! waiting: latency stays bounded under overload and the client is told to
//! retry (HTTP 503 with Retry-After). The async side awaits a oneshot reply,
//! so no runtime thread ever blocks on a face; the caller's tracing span is
//! carried into the worker. A job whose caller has gone (the client hung up
//! and the request was dropped while the job waited in the queue) is
//! skipped, not run: nobody would read its answer.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_channel::{bounded, Sender, TrySendError};
use face_core::{FacePipeline, ModelInfo};

use crate::access::ClientProbe;
use crate::{telemetry, ServiceError};

type Job = Box<dyn FnOnce(&mut FacePipeline) + Send>;

/// Worker threads, each with its own pipeline, behind one bounded queue.
pub struct FaceWorkers {
    queue: Sender<Job>,
    model: Arc<ModelInfo>,
    detector: String,
    backend: &'static str,
    execution: String,
    threads: usize,
    queue_depth: usize,
    /// Jobs skipped because their caller had gone.
    abandoned: Arc<AtomicU64>,
    /// Workers running a job now.
    busy: Arc<AtomicUsize>,
}

/// How loaded the workers are, at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerLoad {
    /// Worker threads.
    pub threads: usize,
    /// Workers running a job.
    pub busy: usize,
    /// Jobs waiting for a worker.
    pub waiting: usize,
    /// The most jobs that may wait.
    pub capacity: usize,
}

impl WorkerLoad {
    /// Whether a new job would be taken rather than refused as `Busy`: a
    /// free place in the queue, or, with no queue, an idle worker.
    pub fn has_room(&self) -> bool {
        self.waiting < self.capacity || (self.capacity == 0 && self.busy < self.threads)
    }
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
        let backend = first.backend();
        let execution = first.execution().to_string();
        if pipelines.iter().any(|p| p.model().id != model.id) {
            return Err(ServiceError::Internal(
                "face workers run different models".into(),
            ));
        }
        let (tx, rx) = bounded::<Job>(queue_depth);
        let threads = pipelines.len();
        let busy = Arc::new(AtomicUsize::new(0));
        for (i, mut pipeline) in pipelines.into_iter().enumerate() {
            let rx = rx.clone();
            let busy = Arc::clone(&busy);
            std::thread::Builder::new()
                .name(format!("face-worker-{i}"))
                .spawn(move || {
                    for job in rx.iter() {
                        busy.fetch_add(1, Ordering::Relaxed);
                        // A panic in one job must not take the worker down;
                        // the job's caller sees its reply channel close.
                        let _ = catch_unwind(AssertUnwindSafe(|| job(&mut pipeline)));
                        busy.fetch_sub(1, Ordering::Relaxed);
                    }
                })
                .map_err(|e| ServiceError::Internal(format!("cannot start face worker: {e}")))?;
        }
        Ok(Self {
            queue: tx,
            model,
            detector,
            backend,
            execution,
            threads,
            queue_depth,
            abandoned: Arc::default(),
            busy,
        })
    }

    /// The workers' load now.
    pub fn load(&self) -> WorkerLoad {
        WorkerLoad {
            threads: self.threads,
            busy: self.busy.load(Ordering::Relaxed),
            waiting: self.queue.len(),
            capacity: self.queue_depth,
        }
    }

    /// The backend the pipelines run (`"dlib"`, `"onnx"`).
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Jobs skipped so far because their caller had gone before a worker
    /// took them.
    pub fn abandoned(&self) -> u64 {
        self.abandoned.load(Ordering::Relaxed)
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
    pub async fn run<T, F>(&self, f: F, probe: Option<ClientProbe>) -> Result<T, ServiceError>
    where
        T: Send + 'static,
        F: FnOnce(&mut FacePipeline) -> T + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel::<Option<T>>();
        let span = tracing::Span::current();
        let abandoned = Arc::clone(&self.abandoned);
        let job: Job = Box::new(move |pipeline| {
            let _entered = span.enter();
            // The request was dropped, or its client hung up: skip the work.
            let gone = tx.is_closed() || probe.as_ref().is_some_and(|p| !p.is_there());
            if gone {
                abandoned.fetch_add(1, Ordering::Relaxed);
                metrics::counter!(telemetry::JOBS_ABANDONED).increment(1);
                tracing::debug!("client gone: face job skipped");
                let _ = tx.send(None);
                return;
            }
            let _ = tx.send(Some(f(pipeline)));
        });
        self.queue.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => {
                metrics::counter!(telemetry::JOBS_REJECTED).increment(1);
                ServiceError::Busy
            }
            TrySendError::Disconnected(_) => ServiceError::Internal("face workers stopped".into()),
        })?;
        match rx.await {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(ServiceError::ClientGone),
            Err(_) => Err(ServiceError::Internal(
                "a face worker failed while processing the image".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::WorkerLoad;

    fn load(busy: usize, waiting: usize, capacity: usize) -> WorkerLoad {
        WorkerLoad {
            threads: 2,
            busy,
            waiting,
            capacity,
        }
    }

    #[test]
    fn room_is_a_free_place_in_the_queue_or_without_one_an_idle_worker() {
        assert!(load(2, 15, 16).has_room());
        assert!(!load(2, 16, 16).has_room());
        // Idle workers take from the queue, so a full queue with an idle
        // worker is a moment, and still no room for a new job.
        assert!(!load(1, 16, 16).has_room());
        assert!(load(1, 0, 0).has_room());
        assert!(!load(2, 0, 0).has_room());
    }
}
