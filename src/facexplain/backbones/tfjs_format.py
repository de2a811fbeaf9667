"""The TF.js file format: graph-model JSON topology and binary weight shards.

Shared by the TF.js graph front end and the hand-written dlib ResNet, whose face-api weights
are TF.js weight files too: one decoder, so both dequantise exactly as tfjs does.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


class GraphFormatError(ValueError):
    """The model.json or its weight shards are not a TF.js graph model this module can read."""


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


_PLAIN_DTYPES: dict[str, tuple[str, int]] = {
    "float32": ("<f4", 4), "int32": ("<i4", 4), "bool": ("u1", 1),
}
_QUANT_DTYPES: dict[str, tuple[str, int]] = {
    "uint8": ("u1", 1), "uint16": ("<u2", 2), "float16": ("<f2", 2),
}



def _decode_weight(spec: Mapping[str, Any], data: bytes, offset: int) -> tuple[np.ndarray, int]:
    shape = tuple(int(s) for s in spec["shape"])
    count = math.prod(shape)
    dtype = spec["dtype"]
    quant = spec.get("quantization")
    if quant:
        if quant["dtype"] not in _QUANT_DTYPES:
            raise GraphFormatError(f"weight {spec['name']}: unknown quantization {quant['dtype']}")
        np_dtype, size = _QUANT_DTYPES[quant["dtype"]]
        raw = np.frombuffer(data, dtype=np_dtype, count=count, offset=offset)
        if quant["dtype"] == "float16":
            arr = raw.astype(np.float32)
        else:
            # TF.js dequantises in float64 (JS numbers) and stores the result as float32.
            real = raw.astype(np.float64) * float(quant["scale"]) + float(quant["min"])
            arr = np.trunc(real).astype(np.int32) if dtype == "int32" else real.astype(np.float32)
    else:
        if dtype not in _PLAIN_DTYPES:
            raise GraphFormatError(f"weight {spec['name']}: unsupported dtype {dtype}")
        np_dtype, size = _PLAIN_DTYPES[dtype]
        arr = np.frombuffer(data, dtype=np_dtype, count=count, offset=offset)
        arr = arr.astype(np.bool_) if dtype == "bool" else arr.astype(np_dtype[1:])
    return arr.reshape(shape), offset + count * size


def decode_group(specs: Sequence[Mapping[str, Any]], data: bytes, where: str
                 ) -> dict[str, np.ndarray]:
    """Decode one weight group: ``specs`` laid out back to back in ``data``, nothing left over."""
    weights: dict[str, np.ndarray] = {}
    offset = 0
    for spec in specs:
        try:
            weights[spec["name"]], offset = _decode_weight(spec, data, offset)
        except ValueError as err:  # numpy: buffer too small
            raise GraphFormatError(f"{where}: too short at weight {spec['name']}") from err
    if offset != len(data):
        raise GraphFormatError(f"{where}: {len(data)} bytes, the manifest describes {offset}")
    return weights


def decode_weights(manifest: Sequence[Mapping[str, Any]], base_dir: Path) -> dict[str, np.ndarray]:
    """Read every weight group of a manifest: its shards (under ``base_dir``) concatenated."""
    weights: dict[str, np.ndarray] = {}
    for group in manifest:
        data = b"".join((base_dir / p).read_bytes() for p in group["paths"])
        weights.update(decode_group(group["weights"], data, ", ".join(group["paths"])))
    return weights


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

