"""De-quantisation of ONNX graphs: block-wise ``DequantizeLinear`` in numpy, and a float copy of a
quantised model.

Why: SFace ships int8 weights with block-wise DequantizeLinear, which onnxruntime refuses and
torch cannot differentiate through; the graph executor folds constant DequantizeLinear nodes
into float weights once, at build (``onnx_graph``), and set-up writes SFace's float copy
(``dequantize_model``) so the exported forward-only runtime can be built from it.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper


def dequantize_block(q: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None,
                     axis: int, block_size: int) -> np.ndarray:
    """ONNX DequantizeLinear: each scale/zero point covers ``block_size`` entries along ``axis``.

    Per-tensor (scalar scale) and per-axis (1-D scale, no block size) forms are handled too.
    """
    q = q.astype(np.float32)
    zp = np.zeros_like(scale) if zero_point is None else zero_point.astype(np.float32)
    scale = scale.astype(np.float32)
    if scale.ndim == 0 or scale.size == 1:
        return (q - zp.reshape(())) * scale.reshape(())
    axis %= q.ndim
    if block_size:
        length = q.shape[axis]
        scale = np.repeat(scale, block_size, axis=axis).take(range(length), axis=axis)
        zp = np.repeat(zp, block_size, axis=axis).take(range(length), axis=axis)
    else:  # per-axis: a 1-D scale along ``axis``
        shape = [1] * q.ndim
        shape[axis] = -1
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    return ((q - zp) * scale).astype(np.float32)


def dequantize_model(model: onnx.ModelProto) -> onnx.ModelProto:
    """Float copy of ``model``: constant DequantizeLinear (and the weight Reshape after it) become
    plain initializers named after the weight (``conv_1_conv2d_weight``); batch made dynamic."""
    graph = model.graph
    consts = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    rename: dict[str, str] = {}
    folded: dict[str, np.ndarray] = {}
    kept = []
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        ins = list(node.input)
        if node.op_type == "DequantizeLinear" and all(i in consts for i in ins if i):
            zp = consts[ins[2]] if len(ins) > 2 and ins[2] else None
            w = dequantize_block(consts[ins[0]], consts[ins[1]], zp, int(attrs.get("axis", 1)),
                                 int(attrs.get("block_size", 0)))
            consts[node.output[0]] = w
            rename[node.output[0]] = ins[0].removesuffix("_quantized")
        elif node.op_type == "Reshape" and ins[0] in rename and ins[1] in consts:
            consts[node.output[0]] = consts[ins[0]].reshape(consts[ins[1]].astype(np.int64))
            rename[node.output[0]] = rename.pop(ins[0])
        else:
            kept.append(node)
    for node in kept:
        for k, name in enumerate(node.input):
            if name in rename:
                folded[rename[name]] = consts[name]
                node.input[k] = rename[name]
    needed = {i for n in kept for i in n.input}
    inits = [numpy_helper.from_array(a, n) for n, a in consts.items()
             if n in needed and n not in rename.values()]
    inits += [numpy_helper.from_array(a.astype(np.float32), n) for n, a in folded.items()]
    inputs = [i for i in graph.input if i.name not in consts and i.name not in folded
              and i.name not in rename.values()]
    for value in (*inputs, *graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "N"
    new_graph = helper.make_graph(kept, graph.name, inputs, list(graph.output), inits)
    out = helper.make_model(new_graph, opset_imports=list(model.opset_import),
                            producer_name="facexplain")
    out.ir_version = model.ir_version
    onnx.checker.check_model(out)
    return out
