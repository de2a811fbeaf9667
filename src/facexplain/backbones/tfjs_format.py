"""The TF.js file format: graph-model JSON topology and binary weight shards.

The weight shards are decoded by ``facexplain.tfjs_weights``, a leaf shared with the
hand-written face-api nets (dlib's ResNet here, the 68-point landmark net in ``align``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facexplain.tfjs_weights import GraphFormatError, decode_weights


class UnsupportedOp(NotImplementedError):
    """The graph uses an op the torch executor does not implement."""


@dataclass
class GraphNode:
    """One GraphDef node with decoded attributes (strings, ints, floats, lists)."""

    name: str
    op: str
    inputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class GraphModel:
    """A parsed TF.js graph model: nodes in file order and the decoded constant values."""

    nodes: dict[str, GraphNode]
    weights: dict[str, np.ndarray]
    signature: dict[str, Any]

    @property
    def placeholders(self) -> list[str]:
        return [n.name for n in self.nodes.values() if n.op == "Placeholder"]


# ----------------------------------------------------------------------------------- parsing


def _attr_scalar(kind: str, value: Any) -> Any:
    if kind == "s":
        return base64.b64decode(value).decode("utf-8", errors="replace")
    if kind == "i":
        return int(value)
    if kind == "f":
        return float(value)
    if kind == "b":
        return bool(value)
    return value


def _decode_attr(value: Mapping[str, Any]) -> Any:
    """Proto-JSON AttrValue -> Python value (proto3 leaves defaults out: {} means 0/empty)."""
    if "list" in value:
        items = value["list"]
        for kind in ("i", "f", "s", "b", "type", "shape"):
            if kind in items:
                return [_attr_scalar(kind, v) for v in items[kind]]
        return []
    for kind in ("s", "i", "f", "b", "type", "shape", "tensor", "func"):
        if kind in value:
            return _attr_scalar(kind, value[kind])
    return None


def _split_input(ref: str) -> str | None:
    """'name:0' -> 'name'; control inputs ('^name') carry no data and give None."""
    if ref.startswith("^"):
        return None
    name, sep, index = ref.rpartition(":")
    if sep and index.isdigit():
        if index != "0":
            raise UnsupportedOp(f"input '{ref}' reads output {index} of a multi-output op")
        return name
    return ref


def parse_graph_model(model_json: Path) -> GraphModel:
    """Parse model.json (topology + weightsManifest) and decode its weight shards."""
    spec = json.loads(Path(model_json).read_text())
    if spec.get("format", "graph-model") != "graph-model" or "modelTopology" not in spec:
        raise GraphFormatError(f"{model_json} is not a TF.js graph model")
    nodes: dict[str, GraphNode] = {}
    for raw in spec["modelTopology"].get("node", []):
        inputs = [n for n in (_split_input(r) for r in raw.get("input", [])) if n is not None]
        attrs = {k: _decode_attr(v) for k, v in raw.get("attr", {}).items()}
        nodes[raw["name"]] = GraphNode(raw["name"], raw["op"], inputs, attrs)
    if spec["modelTopology"].get("library", {}).get("function"):
        raise UnsupportedOp(f"{model_json} uses graph functions (control flow)")
    weights = decode_weights(spec.get("weightsManifest", []), Path(model_json).parent)
    for node in nodes.values():
        if node.op == "Const" and node.name not in weights:
            raise GraphFormatError(f"constant '{node.name}' has no value in the weight manifest")
    return GraphModel(nodes, weights, spec.get("signature", {}))

