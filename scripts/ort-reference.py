#!/usr/bin/env python3
# ONNX Runtime's own per-model inference time, the reference the Rust
# pipeline is measured against (issue 15: "a pipeline as fast as its
# models": decoded image -> embedding within the sum of these + 3 ms).
#
# Owns only the measurement of bare `session.run` calls, configured as
# crates/face-core/src/onnx/runtime.rs configures its sessions: one intra-op
# thread, one inter-op thread, sequential execution, graph optimisation
# ORT_ENABLE_LAYOUT (the `ort` crate's GraphOptimizationLevel::Level3, which
# runtime.rs asks for). Inputs are random (seeded), which costs the same as
# a photo for these convolutional networks. `--clock cpu` times the
# thread's CPU time (time.thread_time) instead of wall-clock time, as the
# bench's FACEGATE_BENCH_CLOCK=cpu does: on a shared machine other processes
# disturb it far less.
#
#   .cache/pyenv/bin/python scripts/ort-reference.py [--runs 200] [--warmup 20]
#       [--models DIR] [--shared-models DIR] [--opt-level layout|all|...]
#       [--only SUBSTRING] [--clock wall|cpu] [--pairs] [--json [FILE]]
#
# --pairs also times each shipped pipeline's two models run alternately,
# detector then embedder, as a pipeline runs them (each evicts the other
# from the caches), beside the sum of their separate times.
#
# Defaults: DIR = ./models (the default pipeline's files), shared models =
# ${FACEGATE_SHARED_DIR:-../shared}/models/onnx. Run it in the same session
# as the criterion benches (crates/face-core/benches/onnx.rs) and compare
# ratios: the machine is shared and absolute times drift.
import argparse
import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort

LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "layout": ort.GraphOptimizationLevel.ORT_ENABLE_LAYOUT,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def cases(models, shared):
    """(label, model path, input shape NCHW) in report order. The YuNet-n
    shapes are those the detector builds (longest side 320 or 640, padded
    to a multiple of 32): 320x256 is a 640x480 selfie at 320, 320x192 the
    854x480 photo at 320, 320x320 a 250x250 LFW photo at 320; the fast
    pipeline (config/fast.toml: up to 640, never enlarged) runs 640x480,
    640x384 and 256x256 for the same three photos."""
    n = os.path.join(shared, "yunet_n_dynamic.onnx")
    s = os.path.join(shared, "yunet_s_640_640.onnx")
    y23 = os.path.join(models, "yunet_2023mar.onnx")
    mfn = os.path.join(shared, "mobilefacenet_128d.onnx")
    sface = os.path.join(models, "sface_2021dec.onnx")
    return [
        ("yunet_n 320x320", n, (1, 3, 320, 320)),
        ("yunet_n 320x256", n, (1, 3, 256, 320)),
        ("yunet_n 320x192", n, (1, 3, 192, 320)),
        ("yunet_n 256x256", n, (1, 3, 256, 256)),
        ("yunet_n 640x480", n, (1, 3, 480, 640)),
        ("yunet_n 640x384", n, (1, 3, 384, 640)),
        ("yunet_n 640x640", n, (1, 3, 640, 640)),
        ("yunet_s 640x640", s, (1, 3, 640, 640)),
        ("yunet_2023mar 640x640", y23, (1, 3, 640, 640)),
        ("yunet_2023mar 320x320", y23, (1, 3, 320, 320)),
        ("mobilefacenet 1x112", mfn, (1, 3, 112, 112)),
        ("mobilefacenet 8x112", mfn, (8, 3, 112, 112)),
        ("sface 1x112", sface, (1, 3, 112, 112)),
    ]


def pairs(models, shared):
    """(label, detector case, embedder case) for --pairs: the shipped
    pipelines at the input shapes of the bench's three photos."""
    fast = [("fast 640x480", "yunet_n 640x480"), ("fast 854x480", "yunet_n 640x384"),
            ("fast 250x250", "yunet_n 256x256"), ("fast_320 854x480", "yunet_n 320x192")]
    return [(label, det, "mobilefacenet 1x112") for label, det in fast] + [
        ("default (any photo)", "yunet_2023mar 640x640", "sface 1x112")]


def session(path, level):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = LEVELS[level]
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def accepts(sess, shape):
    """Whether the model's declared input admits `shape` (a fixed
    dimension must match; a named or unknown one takes anything)."""
    declared = sess.get_inputs()[0].shape
    return len(declared) == len(shape) and all(
        not isinstance(d, int) or d <= 0 or d == s for d, s in zip(declared, shape)
    )


def measure(sess, shape, runs, warmup, rng, clock):
    name = sess.get_inputs()[0].name
    x = rng.uniform(0, 255, size=shape).astype(np.float32)
    feed = {name: x}
    for _ in range(warmup):
        sess.run(None, feed)
    times = np.empty(runs)
    for i in range(runs):
        t = clock()
        sess.run(None, feed)
        times[i] = (clock() - t) * 1000.0
    return {
        "median_ms": float(np.median(times)),
        "p10_ms": float(np.percentile(times, 10)),
        "p90_ms": float(np.percentile(times, 90)),
        "min_ms": float(times.min()),
        "runs": runs,
    }


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    shared_dir = os.environ.get("FACEGATE_SHARED_DIR") or os.path.join(root, "..", "shared")
    ap = argparse.ArgumentParser(description="ONNX Runtime per-model inference time, single thread")
    ap.add_argument("--models", default=os.path.join(root, "models"))
    ap.add_argument("--shared-models", default=os.path.join(shared_dir, "models", "onnx"))
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--opt-level", choices=sorted(LEVELS), default="layout")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="wall-clock time, or this thread's CPU time")
    ap.add_argument("--pairs", action="store_true",
                    help="also time each pipeline's detector and embedder run alternately")
    ap.add_argument("--only", default="", help="only cases whose label contains this")
    ap.add_argument("--json", nargs="?", const="-", default=None,
                    help="also write the results as JSON (to FILE, or stdout after the table)")
    args = ap.parse_args()

    rng = np.random.default_rng(15)
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    sessions = {}
    results = []
    print(f"onnxruntime {ort.__version__}, 1 intra-op thread, sequential, "
          f"optimisation {args.opt_level}, {args.clock} clock, "
          f"{args.runs} runs after {args.warmup} warm-up")
    print(f"{'case':<24} {'median ms':>10} {'p10':>8} {'p90':>8} {'min':>8}")
    for label, path, shape in cases(args.models, args.shared_models):
        if args.only not in label:
            continue
        row = {"case": label, "model": os.path.basename(path), "shape": list(shape)}
        if not os.path.isfile(path):
            row["skipped"] = f"{path} not found"
        else:
            if path not in sessions:
                sessions[path] = session(path, args.opt_level)
            sess = sessions[path]
            if not accepts(sess, shape):
                row["skipped"] = f"fixed input {sess.get_inputs()[0].shape}"
            else:
                row.update(measure(sess, shape, args.runs, args.warmup, rng, clock))
        results.append(row)
        if "skipped" in row:
            print(f"{label:<24} {'-':>10}  ({row['skipped']})")
        else:
            print(f"{label:<24} {row['median_ms']:>10.2f} {row['p10_ms']:>8.2f} "
                  f"{row['p90_ms']:>8.2f} {row['min_ms']:>8.2f}")
        sys.stdout.flush()

    if args.pairs:
        by_label = {label: (path, shape) for label, path, shape in cases(args.models, args.shared_models)}
        measured = {r["case"]: r for r in results if "median_ms" in r}
        print(f"\n{'pipeline pair':<24} {'alternating':>11} {'p10':>8} {'p90':>8} {'sum of medians':>15}")
        for label, det, emb in pairs(args.models, args.shared_models):
            if det not in measured or emb not in measured:
                continue
            feeds = []
            for case in (det, emb):
                path, shape = by_label[case]
                sess = sessions[path]
                x = rng.uniform(0, 255, size=shape).astype(np.float32)
                feeds.append((sess, {sess.get_inputs()[0].name: x}))
            def both():
                for sess, feed in feeds:
                    sess.run(None, feed)
            for _ in range(args.warmup):
                both()
            times = np.empty(args.runs)
            for i in range(args.runs):
                t = clock()
                both()
                times[i] = (clock() - t) * 1000.0
            total = measured[det]["median_ms"] + measured[emb]["median_ms"]
            row = {"pair": label, "detector": det, "embedder": emb,
                   "median_ms": float(np.median(times)), "p10_ms": float(np.percentile(times, 10)),
                   "p90_ms": float(np.percentile(times, 90)), "sum_of_medians_ms": total}
            results.append(row)
            print(f"{label:<24} {row['median_ms']:>11.2f} {row['p10_ms']:>8.2f} "
                  f"{row['p90_ms']:>8.2f} {total:>15.2f}")

    if args.json is not None:
        doc = {
            "onnxruntime": ort.__version__,
            "intra_op_threads": 1,
            "inter_op_threads": 1,
            "execution_mode": "sequential",
            "optimisation": args.opt_level,
            "clock": args.clock,
            "results": results,
        }
        text = json.dumps(doc, indent=2)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w") as f:
                f.write(text + "\n")


if __name__ == "__main__":
    main()
