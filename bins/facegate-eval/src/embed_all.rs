//! Embedding every image not yet cached, on several threads.
//!
//! Each worker thread builds its own [`crate::backend::LfwEmbedder`]: the
//! native models must never be used from two threads at once, and a model
//! per thread needs no lock. Workers take image indices from a shared
//! counter and send results to the calling thread, which owns the cache,
//! draws the progress bar and saves the cache every few minutes so an
//! interrupted run loses little. Set `OPENBLAS_NUM_THREADS=1`: the threads
//! here already use the cores, and BLAS threads would fight them.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::backend::{BackendSpec, Embedded};
use crate::cache::Cache;
use crate::lfw::Lfw;
use crate::Result;

/// What one embedding pass did.
#[derive(Debug, Clone, Copy, Default)]
pub struct EmbedRun {
    /// Images embedded in this run (0 when all were cached).
    pub embedded: usize,
    /// Wall-clock seconds of this run's embedding.
    pub seconds: f64,
}

/// Embeds the images of `lfw` missing from `cache`, saving it to
/// `cache_path` periodically and at the end.
pub fn embed_missing(
    lfw: &Lfw,
    spec: &BackendSpec,
    threads: usize,
    cache: &mut Cache,
    cache_path: &std::path::Path,
    show_progress: bool,
) -> Result<EmbedRun> {
    let todo: Vec<usize> = (0..lfw.images.len())
        .filter(|&i| !cache.entries.contains_key(&lfw.images[i].path))
        .collect();
    if todo.is_empty() {
        return Ok(EmbedRun::default());
    }
    let base_seconds = cache.compute_seconds;
    let start = Instant::now();
    let results = embed_indices(lfw, spec, threads, &todo, show_progress, |items| {
        for (i, e) in items {
            cache.entries.insert(lfw.images[*i].path.clone(), e.clone());
        }
        cache.compute_seconds = base_seconds + start.elapsed().as_secs_f64();
        if let Err(e) = cache.save(cache_path) {
            eprintln!("warning: checkpoint of the embedding cache failed: {e}");
        }
    })?;
    let run = EmbedRun {
        embedded: results.items.len(),
        seconds: results.seconds,
    };
    for (i, e) in results.items {
        cache.entries.insert(lfw.images[i].path.clone(), e);
    }
    cache.compute_seconds = base_seconds + results.seconds;
    cache.save(cache_path)?;
    Ok(run)
}

/// Results of [`embed_indices`].
#[derive(Debug, Default)]
pub struct Embeddings {
    /// `(image index, embedding)`, in completion order.
    pub items: Vec<(usize, Embedded)>,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Embeds the given images of `lfw` with `threads` workers. `checkpoint`
/// is called on the calling thread with the results so far, about every
/// two minutes (the command saves the cache there).
pub fn embed_indices(
    lfw: &Lfw,
    spec: &BackendSpec,
    threads: usize,
    indices: &[usize],
    show_progress: bool,
    mut checkpoint: impl FnMut(&[(usize, Embedded)]),
) -> Result<Embeddings> {
    let start = Instant::now();
    let threads = threads.clamp(1, indices.len().max(1));
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let bar = if show_progress {
        let bar = ProgressBar::new(indices.len() as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] {pos}/{len} images ({per_sec}, eta {eta})",
            )
            .map_err(|e| e.to_string())?
            .progress_chars("=> "),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let mut items = Vec::with_capacity(indices.len());
    let mut first_error: Option<String> = None;
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<std::result::Result<(usize, Embedded), String>>();
        for _ in 0..threads {
            let tx = tx.clone();
            let (next, stop) = (&next, &stop);
            scope.spawn(move || {
                let mut embedder = match spec.build() {
                    Ok(e) => e,
                    Err(e) => {
                        let _ = tx.send(Err(format!("cannot load the pipeline: {e}")));
                        return;
                    }
                };
                while !stop.load(Ordering::Relaxed) {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&i) = indices.get(k) else { break };
                    let path = lfw.file(i);
                    let result = std::fs::read(&path)
                        .map_err(|e| format!("cannot read {}: {e}", path.display()))
                        .and_then(|bytes| {
                            embedder
                                .embed(&bytes)
                                .map_err(|e| format!("{}: {e}", path.display()))
                        });
                    if tx.send(result.map(|e| (i, e))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut last_checkpoint = Instant::now();
        for message in rx {
            match message {
                Ok(item) => {
                    items.push(item);
                    bar.inc(1);
                    if last_checkpoint.elapsed() > Duration::from_secs(120) {
                        checkpoint(&items);
                        last_checkpoint = Instant::now();
                    }
                }
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    first_error.get_or_insert(e);
                }
            }
        }
    });
    bar.finish();
    if let Some(e) = first_error {
        return Err(e.into());
    }
    Ok(Embeddings {
        items,
        seconds: start.elapsed().as_secs_f64(),
    })
}
