#!/usr/bin/env python3
"""Fold constant DequantizeLinear nodes of an ONNX model into fp32 weights.

Usage: fold-dequantize.py IN.onnx OUT.onnx

Weight-only quantised models (such as the int8 "bq" files OpenCV Zoo
publishes) store each weight as an integer tensor plus a scale and zero
point, and dequantise it in the graph with `DequantizeLinear`. ONNX Runtime
refuses some of them as they are shipped (a per-tensor scale with a
`block_size`; an old export that still lists its weights as graph inputs).
This script computes every `DequantizeLinear` whose inputs are all
constants (initializers or `Constant` nodes) once, here, exactly as the
ONNX specification defines it (opsets 10-25: per-tensor, per-axis and
blocked quantisation; `axis`, `block_size`, `output_dtype`):

    y = (x - x_zero_point) * x_scale

with `x - x_zero_point` computed in float32 and the product rounded once to
the output type (the scale's type, or `output_dtype`), which is what the
specification's reference implementation and ONNX Runtime's CPU kernel do.
The result replaces the node as an initializer of the same name.

Then, and only then:
  * the quantised tensors, scales and zero points that nothing reads any
    more are removed (initializers and `Constant` nodes), as are other
    initializers that nothing reads (ONNX Runtime drops those itself, with
    a warning per tensor);
  * graph inputs that are initializers are removed from the inputs (they
    stay as initializers: constants, not overridable inputs), as are graph
    inputs that nothing reads (an old export's weight names whose values
    are now produced by the dequantisation);
  * `value_info` entries of names that no longer exist are removed.
Everything else (nodes, their order, names, opsets, metadata) is kept. The
result is checked with `onnx.checker.check_model` and written with
deterministic serialisation: the same input and the same `onnx` release
give a byte-identical output.

Only the main graph is folded; a `DequantizeLinear` inside a subgraph
(If/Loop/Scan) or one with a non-constant input is left as it is.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# Types whose zero point the specification ignores (it must be zero).
_ZERO_POINT_IGNORED = {
    TensorProto.FLOAT8E4M3FN,
    TensorProto.FLOAT8E4M3FNUZ,
    TensorProto.FLOAT8E5M2,
    TensorProto.FLOAT8E5M2FNUZ,
}
if hasattr(TensorProto, "FLOAT4E2M1"):
    _ZERO_POINT_IGNORED.add(TensorProto.FLOAT4E2M1)

_FLOAT_OUTPUTS = {TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16}


class FoldError(Exception):
    """A DequantizeLinear node that does not follow the specification."""


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _expand(
    param: np.ndarray, x_shape: tuple, axis: int, block_size: int, what: str
) -> np.ndarray:
    """`param` (a scale or zero point) broadcastable to `x_shape`."""
    rank = len(x_shape)
    if param.ndim == 0:  # per-tensor
        return param
    if block_size == 0:
        if param.ndim != 1:
            raise FoldError(
                f"{what} has shape {param.shape}: without block_size it must be a "
                "scalar or 1-D"
            )
        if param.size == 1:
            # A 1-element 1-D tensor: per-tensor, as older exports write it
            # (and as the reference implementation and ONNX Runtime read it).
            return param.reshape(())
        if rank == 0 or param.size != x_shape[axis]:
            raise FoldError(
                f"per-axis {what} has {param.size} values, the input {x_shape} has "
                f"{x_shape[axis] if rank else 0} along axis {axis}"
            )
        dims = [1] * rank
        dims[axis] = param.size
        return param.reshape(dims)
    # Blocked: same rank as x; along `axis` ceil(D / block_size) blocks, every
    # other dimension equal to x's. Element i along the axis uses block
    # floor(i / block_size); the last block may be short.
    want = list(x_shape)
    want[axis] = -(-x_shape[axis] // block_size)
    if list(param.shape) != want:
        raise FoldError(
            f"blocked {what} has shape {list(param.shape)}; for input {list(x_shape)}, "
            f"axis {axis} and block_size {block_size} it must be {want}"
        )
    index = np.arange(x_shape[axis]) // block_size
    return np.take(param, index, axis=axis)


def dequantize(
    x: np.ndarray,
    x_type: int,
    scale: np.ndarray,
    zero_point: np.ndarray | None,
    zero_type: int | None,
    axis: int,
    block_size: int,
    output_type: int,
) -> np.ndarray:
    """DequantizeLinear per the ONNX specification (opsets 10-25)."""
    rank = x.ndim
    if rank and not -rank <= axis < rank:
        raise FoldError(f"axis {axis} is out of range for an input of rank {rank}")
    if rank:
        axis %= rank
    if block_size < 0:
        raise FoldError(f"block_size must not be negative, found {block_size}")
    if zero_point is not None and tuple(zero_point.shape) != tuple(scale.shape):
        raise FoldError(
            f"zero point shape {list(zero_point.shape)} differs from the scale's "
            f"{list(scale.shape)}"
        )
    dx = x.astype(np.float32)
    if zero_point is not None:
        if x_type in _ZERO_POINT_IGNORED:
            if np.any(zero_point.astype(np.float32) != 0):
                raise FoldError("a float8/float4 input must have a zero zero point")
        else:
            if zero_type != x_type:
                raise FoldError(
                    f"zero point type {TensorProto.DataType.Name(zero_type)} differs "
                    f"from the input's {TensorProto.DataType.Name(x_type)}"
                )
            dx = dx - _expand(
                zero_point.astype(np.float32), x.shape, axis, block_size, "zero point"
            )
    y = dx * _expand(scale.astype(np.float32), x.shape, axis, block_size, "scale")
    return y.astype(helper.tensor_dtype_to_np_dtype(output_type))


def _graph_reads(graph: onnx.GraphProto) -> set[str]:
    """Every name read by a node of `graph` or of its subgraphs (which may
    read the outer graph's names), and the graph's outputs."""
    names = {o.name for o in graph.output}
    for node in graph.node:
        names.update(i for i in node.input if i)
        for a in node.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                names |= _graph_reads(a.g)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for g in a.graphs:
                    names |= _graph_reads(g)
    return names


def fold(model: onnx.ModelProto) -> dict:
    """Folds `model` in place; returns counts for the log line."""
    graph = model.graph
    opset = next(
        (o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0
    )
    inits = {t.name: t for t in graph.initializer}
    consts: dict[str, onnx.TensorProto] = {}
    for node in graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            a = _attrs(node)
            if "value" in a and isinstance(a["value"], onnx.TensorProto):
                consts[node.output[0]] = a["value"]

    def constant(name: str) -> onnx.TensorProto | None:
        return inits.get(name) or consts.get(name)

    folded: list[onnx.TensorProto] = []
    kept_nodes = []
    consumed: set[str] = set()
    for node in graph.node:
        if node.op_type != "DequantizeLinear" or node.domain not in ("", "ai.onnx"):
            kept_nodes.append(node)
            continue
        ins = list(node.input) + [""] * (3 - len(node.input))
        protos = [constant(n) if n else None for n in ins[:3]]
        if protos[0] is None or protos[1] is None or (ins[2] and protos[2] is None):
            kept_nodes.append(node)  # not all inputs are constants
            continue
        a = _attrs(node)
        unknown = set(a) - {"axis", "block_size", "output_dtype"}
        if unknown:
            raise FoldError(f"{node.name or node.output[0]}: unknown attributes {unknown}")
        x_t, s_t, z_t = protos
        output_type = a.get("output_dtype", 0) or s_t.data_type
        if output_type not in _FLOAT_OUTPUTS:
            raise FoldError(
                f"{node.name or node.output[0]}: output type "
                f"{TensorProto.DataType.Name(output_type)} is not a float type"
            )
        # block_size exists from opset 21, output_dtype from 23; axis
        # defaults to 1.
        if opset < 21 and "block_size" in a or opset < 23 and "output_dtype" in a:
            raise FoldError(
                f"{node.name or node.output[0]}: attributes {sorted(a)} do not exist "
                f"in opset {opset}"
            )
        block_size = int(a.get("block_size", 0))
        try:
            y = dequantize(
                numpy_helper.to_array(x_t),
                x_t.data_type,
                numpy_helper.to_array(s_t),
                numpy_helper.to_array(z_t) if z_t is not None else None,
                z_t.data_type if z_t is not None else None,
                int(a.get("axis", 1)),
                block_size,
                output_type,
            )
        except FoldError as e:
            raise FoldError(f"{node.name or node.output[0]}: {e}") from None
        tensor = numpy_helper.from_array(y, node.output[0])
        if tensor.data_type != output_type:
            raise FoldError(f"{node.output[0]}: numpy gave the wrong output type")
        folded.append(tensor)
        consumed.update(n for n in ins[:3] if n)

    del graph.node[:]
    graph.node.extend(kept_nodes)
    graph.initializer.extend(folded)

    # Remove what nothing reads any more: the quantised constants, then any
    # other unread initializer or Constant node.
    reads = _graph_reads(graph)
    nodes = [
        n
        for n in graph.node
        if not (
            n.op_type == "Constant"
            and n.domain in ("", "ai.onnx")
            and n.output[0] in consts
            and n.output[0] not in reads
        )
    ]
    removed_consts = len(graph.node) - len(nodes)
    del graph.node[:]
    graph.node.extend(nodes)
    reads = _graph_reads(graph)
    kept_inits = [t for t in graph.initializer if t.name in reads]
    removed_inits = len(graph.initializer) - len(kept_inits)
    removed_quantised = sum(
        1 for t in graph.initializer if t.name in consumed and t.name not in reads
    )
    del graph.initializer[:]
    graph.initializer.extend(kept_inits)

    # Graph inputs: initializers are constants (IR 4+ allows them outside the
    # inputs), and an input nothing reads is a leftover weight name.
    init_names = {t.name for t in graph.initializer}
    dropped_init_inputs = dropped_unread_inputs = 0
    inputs = []
    for i in graph.input:
        if model.ir_version >= 4 and i.name in init_names:
            dropped_init_inputs += 1
        elif i.name not in reads and i.name not in init_names:
            dropped_unread_inputs += 1
        else:
            inputs.append(i)
    del graph.input[:]
    graph.input.extend(inputs)

    produced = {o for n in graph.node for o in n.output} | init_names
    produced |= {i.name for i in graph.input}
    vi = [v for v in graph.value_info if v.name in produced]
    dropped_vi = len(graph.value_info) - len(vi)
    del graph.value_info[:]
    graph.value_info.extend(vi)
    return {
        "folded": len(folded),
        "removed_quantised_initializers": removed_quantised,
        "removed_other_initializers": removed_inits - removed_quantised,
        "removed_constant_nodes": removed_consts,
        "dropped_initializer_inputs": dropped_init_inputs,
        "dropped_unread_inputs": dropped_unread_inputs,
        "dropped_value_info": dropped_vi,
        "left_dequantize": sum(1 for n in graph.node if n.op_type == "DequantizeLinear"),
    }


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] in ("-h", "--help"):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    src, dst = argv[1], argv[2]
    model = onnx.load(src)
    try:
        stats = fold(model)
    except FoldError as e:
        print(f"{src}: {e}", file=sys.stderr)
        return 1
    onnx.checker.check_model(model, full_check=True)
    data = model.SerializeToString(deterministic=True)
    tmp = f"{dst}.partial"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, dst)
    summary = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in stats.items())
    print(f"{os.path.basename(src)} -> {dst}: {summary}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
