"""The intermediate representation both graph front ends (ONNX, TF.js) produce.

A ``Graph`` is a list of ``Node``s (op kind, inputs, one output named like the node,
attributes), the names of its runtime inputs with their ranks, and its constants (the
weights, which the executor keeps as frozen parameters). Op kinds follow ONNX's operator
names (``Conv``, ``BatchNormalization``, ``Gemm``, ``Max``, ``ReduceMean``, ...), plus a few
TF ops without an ONNX counterpart (``Rsqrt``, ``Square``, ``SquaredDifference``). Shapes,
axes and paddings are attributes, never tensors. 4-D values are in the graph's ``layout``:
``NHWC`` for TF.js graphs, ``NCHW`` for ONNX; the compiler stores every 4-D runtime value
NCHW and translates axes, so one lowering and one fusion pass serve both front ends.

A node the front end cannot express gets the op ``Unsupported`` with a ``reason`` attribute:
the compiler raises ``UnsupportedOp`` with that reason if (and only if) a requested value
depends on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

NHWC, NCHW_LAYOUT = "NHWC", "NCHW"
UNSUPPORTED = "Unsupported"

# Attributes of the op kinds (defaults in brackets; every front end fills the ones it knows):
#   Conv(x, w, *fused_args): weight_format OIHW|HWIO|HWCM, strides, dilations, group [1],
#       auto_pad NOTSET|SAME_UPPER|SAME_LOWER, pads [begins..., ends...], fused_ops [[]]
#       (``BiasAdd`` then an activation, each reading the next ``fused_args``).
#   Gemm(a, b, *fused_args): transA, transB, alpha [1], beta [1] (scales a BiasAdd), fused_ops.
#   BatchNormalization(x, scale, offset, mean, var): epsilon.
#   ReduceMean|ReduceSum|ReduceMax|ReduceMin(x): axes, keepdims.
#   Pad(x): pads [(before, after) per axis], mode constant|reflect, value.
#   Reshape(x): shape, allowzero. Squeeze(x): axes. Concat(*xs): axis. Softmax(x): axis.
#   Flatten(x): axis. Transpose(x): perm (None: reversed). Cast(x): to (torch dtype name).
#   Clip(x): lo, hi (None: unbounded). LeakyRelu(x): alpha.
#   MaxPool|AveragePool(x): kernel_shape, strides, pads, auto_pad, count_include_pad.


@dataclass
class Node:
    """One operation: reads ``inputs`` (runtime values or constants), writes ``name``."""

    name: str
    op: str
    inputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def outputs(self) -> list[str]:
        return [self.name]


@dataclass
class Graph:
    """Nodes (file order), runtime inputs with their ranks, constants, the 4-D layout."""

    nodes: dict[str, Node]
    inputs: dict[str, int]
    constants: dict[str, torch.Tensor]
    layout: str
    outputs: list[str] = field(default_factory=list)

    def statistics(self) -> set[str]:
        """Batch-norm running means/variances: buffers, not parameters (as in ``nn.BatchNorm``)."""
        return {i for n in self.nodes.values() if n.op == "BatchNormalization"
                for i in n.inputs[3:5]}

    def used(self) -> set[str]:
        return {i for n in self.nodes.values() for i in n.inputs}


def unsupported(name: str, reason: str, inputs: Iterable[str] = ()) -> Node:
    return Node(name, UNSUPPORTED, list(inputs), {"reason": reason})
