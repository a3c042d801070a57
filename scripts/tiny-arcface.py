#!/usr/bin/env python3
"""Write a tiny ArcFace-shaped ONNX model and its reference outputs.

The model has the interface of InsightFace's 512-D recognition models
(input [batch, 3, 112, 112] float, output [batch, 512]) and fixed random
weights (numpy seed 7), so FaceGate's 512-D embedding path is tested without
proprietary weights. Its metadata declares the normalisation the embedder
must read from the file: BGR channels, (x - 127.5) / 127.5.

Reference outputs are computed by onnxruntime's Python API on procedurally
generated 112x112 chips (chip k, pixel (x, y), channel c of the RGB image is
(7x + 13y + 29c + 31k) mod 256); the Rust test builds the same chips.

Usage: tiny-arcface.py OUT_DIR   (needs the onnx, onnxruntime, numpy packages)
Writes OUT_DIR/tiny_arcface_512.onnx and OUT_DIR/tiny_arcface_512.reference.json.
"""
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

DIM = 512
SIDE = 112
CHIPS = 3


def build_model() -> onnx.ModelProto:
    rng = np.random.default_rng(7)
    conv_w = rng.normal(0, 0.2, size=(8, 3, 8, 8)).astype(np.float32)
    conv_b = rng.normal(0, 0.1, size=(8,)).astype(np.float32)
    feat = 8 * (SIDE // 8) * (SIDE // 8)
    gemm_w = rng.normal(0, 0.05, size=(feat, DIM)).astype(np.float32)
    gemm_b = rng.normal(0, 0.05, size=(DIM,)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["input", "conv_w", "conv_b"], ["c"], strides=[8, 8], kernel_shape=[8, 8]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Flatten", ["r"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "gemm_w", "gemm_b"], ["embedding"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_arcface_512",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, SIDE, SIDE])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", DIM])],
        [
            numpy_helper.from_array(conv_w, "conv_w"),
            numpy_helper.from_array(conv_b, "conv_b"),
            numpy_helper.from_array(gemm_w, "gemm_w"),
            numpy_helper.from_array(gemm_b, "gemm_b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="facegate-tests")
    model.ir_version = 8
    for key, value in {"facegate.mean": "127.5", "facegate.std": "127.5", "facegate.channels": "bgr"}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    return model


def chip(k: int) -> np.ndarray:
    """RGB uint8 [SIDE, SIDE, 3]."""
    y, x, c = np.meshgrid(np.arange(SIDE), np.arange(SIDE), np.arange(3), indexing="ij")
    return ((7 * x + 13 * y + 29 * c + 31 * k) % 256).astype(np.uint8)


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "tiny_arcface_512.onnx")
    onnx.save(build_model(), path)

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    chips = np.stack([chip(k) for k in range(CHIPS)])  # [n, h, w, rgb]
    bgr = chips[..., ::-1].astype(np.float32)
    batch = ((bgr - 127.5) / 127.5).transpose(0, 3, 1, 2).copy()
    raw = session.run(None, {"input": batch})[0]
    single = np.concatenate([session.run(None, {"input": batch[k : k + 1]})[0] for k in range(CHIPS)])
    assert np.allclose(raw, single, atol=1e-5), "batched and single outputs differ"
    normed = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    with open(os.path.join(out, "tiny_arcface_512.reference.json"), "w") as f:
        json.dump(
            {
                "onnxruntime": ort.__version__,
                "dimension": DIM,
                "raw": raw.tolist(),
                "normalized": normed.tolist(),
            },
            f,
        )
    print(f"wrote {path} and its reference outputs ({CHIPS} chips, {DIM}-D)")


if __name__ == "__main__":
    main()
