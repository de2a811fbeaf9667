"""TF.js weight files: a manifest (JSON) describing tensors laid back to back in binary shards.

Why a leaf module: the TF.js graph front end (``backbones``), dlib's ResNet and face-api's
68-point landmark net (``align``) all read these files; one decoder, so every one of them
dequantises exactly as tfjs does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


class GraphFormatError(ValueError):
    """The model.json or its weight shards are not a TF.js graph model this module can read."""


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


def read_tfjs_weights(bin_path: Path, manifest_path: Path) -> dict[str, np.ndarray]:
    """Decode a weights manifest + its single shard (face-api's layout) into arrays (HWIO kept)."""
    groups: list[dict[str, Any]] = json.loads(manifest_path.read_text())
    specs = [entry for group in groups for entry in group["weights"]]
    return decode_group(specs, bin_path.read_bytes(), bin_path.name)
