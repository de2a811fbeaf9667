"""ONNX graphs exported with a fixed batch size, made to take any batch.

Why: TFLite and mobile conversions often fix the batch (input [2, 3, 112, 112] and a Reshape to
[2, 192]); the executor then fails on any other number of faces. Where the graph allows it,
the batch dimension of the inputs and outputs becomes symbolic and every Reshape whose target
shape starts with the fixed batch keeps its input's first dimension instead (ONNX's 0); the
rewritten graph is accepted only if onnxruntime gives the original's outputs on a full batch
and on a single face.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from facexplain.errors import UserModelError

TOLERANCE = 1e-4  # relative to the output's largest value


def fixed_batch(proto: Any) -> int | None:
    """The batch size the first input is fixed to, if any above 1."""
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    return int(dims[0].dim_value) if dims and dims[0].dim_value > 1 else None


def _rewrite(proto: Any, batch: int) -> Any:
    import onnx
    from onnx import numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(proto)
    graph = out.graph
    for value in (*graph.input, *graph.output, *graph.value_info):
        dims = value.type.tensor_type.shape.dim
        if dims and dims[0].dim_value == batch:
            dims[0].dim_param = "N"
    consts: dict[str, Any] = {init.name: init for init in graph.initializer}
    for node in graph.node:  # shapes written as Constant nodes (what torch.onnx.export does)
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            consts[node.output[0]] = node.attribute[0].t
    for node in graph.node:
        if node.op_type == "Reshape" and len(node.input) > 1 and node.input[1] in consts:
            tensor = consts[node.input[1]]
            shape = numpy_helper.to_array(tensor).copy()
            if shape.ndim == 1 and shape.size and int(shape[0]) == batch:
                shape[0] = 0  # copy the input's first dimension
                tensor.CopyFrom(numpy_helper.from_array(shape.astype(np.int64), tensor.name))
    return out


def _run(proto_or_path: Any, x: np.ndarray, output: str) -> np.ndarray:
    import onnxruntime as ort

    model = proto_or_path.SerializeToString() if not isinstance(proto_or_path, Path) else str(
        proto_or_path)
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.asarray(sess.run([output], {name: x.astype(np.float32)})[0])


def dynamic_batch(proto: Any, path: Path, output: str, size: int) -> tuple[Any, int | None]:
    """``proto`` unchanged when its batch is free; else the rewritten graph and the fixed batch
    it had, checked against the original on onnxruntime (UserModelError where it differs or
    onnxruntime cannot run it)."""
    batch = fixed_batch(proto)
    if batch is None:
        return proto, None
    new = _rewrite(proto, batch)
    x = np.random.default_rng(0).uniform(0, 255, (batch, 3, size, size)).astype(np.float32)
    try:
        want = _run(path, x, output)
        full, one = _run(new, x, output), _run(new, x[:1], output)
    except Exception as err:  # noqa: BLE001 - any runtime failure means: cannot verify
        raise UserModelError(f"{path.name} is exported with a fixed batch of {batch}, and the "
                             f"graph could not be made to take any batch "
                             f"({str(err).splitlines()[0][:100]}); export it with a dynamic "
                             "batch dimension") from None
    scale = max(float(np.abs(want).max()), 1e-12)
    if full.shape != want.shape or one.shape[1:] != want.shape[1:] or max(
            float(np.abs(full - want).max()), float(np.abs(one - want[:1]).max())) > (
            TOLERANCE * scale):
        raise UserModelError(f"{path.name} is exported with a fixed batch of {batch}, and the "
                             "graph made to take any batch gives other outputs; export it with "
                             "a dynamic batch dimension")
    return new, batch
