"""What a user's ONNX file declares, read before anything runs: readable, its input size, its
external weight files, a fixed batch; and the one self-contained file that is checked and stored.

Why here, first: a 160 px model used to be run at 112 px (or end in a torch shape error), an
absurd ``--input-size`` tried to allocate 149 GiB, and a model whose weights sit in external
files registered without them and broke at its first use. Each is now a one-line refusal or
handled: the declared size is used, external tensors are read in (their files' sha256 kept in
the record) and stored inline in the registered copy, so the one sha256 of the record covers
every weight.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from facexplain import assets
from facexplain.errors import InputNotFound, InvalidArgument, UserModelError

Log = Callable[[str], None]
MIN_INPUT_SIZE, MAX_INPUT_SIZE = 32, 1024  # crop sizes (px) a face model plausibly takes
MAX_INLINE_BYTES = 2**31 - 1  # protobuf's limit: one ONNX file cannot hold more


def _external_tensors(proto: Any) -> list[Any]:
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    return [t for t in _get_all_tensors(proto) if uses_external_data(t)]


def load_proto(path: Path) -> tuple[Any, list[dict[str, str]]]:
    """The model with every weight in memory, and the external data files it read (name and
    sha256; empty for a self-contained file). One-line errors for what cannot be read."""
    import onnx
    from onnx.external_data_helper import ExternalDataInfo, load_external_data_for_tensor

    if not path.is_file():
        raise InputNotFound(f"{path}: no such file")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as err:  # noqa: BLE001 - any decode failure is the same user error
        raise UserModelError(f"{path} is not a readable ONNX model ({type(err).__name__})"
                             ) from None
    if not proto.graph.node:
        raise UserModelError(f"{path} is not a readable ONNX model (no graph nodes)")
    folder = path.resolve().parent
    files: dict[str, Path] = {}
    for tensor in _external_tensors(proto):
        location = ExternalDataInfo(tensor).location
        data = (folder / location).resolve()
        if not data.is_relative_to(folder) or not data.is_file():
            raise UserModelError(f"{path.name}: its weights are in an external file "
                                 f"'{location}' that is not beside it in {folder}")
        files[location] = data
        try:
            load_external_data_for_tensor(tensor, str(folder))
        except Exception as err:  # noqa: BLE001 - a short or unreadable data file
            raise UserModelError(f"{path.name}: its external weights in '{location}' cannot be "
                                 f"read ({type(err).__name__})") from None
    if files and proto.ByteSize() > MAX_INLINE_BYTES:
        raise UserModelError(f"{path.name}: its external weights are over 2 GB; one ONNX file "
                             "cannot hold them (not supported)")
    return proto, [{"file": name, "sha256": assets.sha256_of(p)} for name, p in files.items()]


def input_size(proto: Any, given: int | None, template_size: int | None, name: str) -> int:
    """The crop size to run the model at: the size its input declares (a contradicting
    ``--input-size`` refused), else ``given``, else the template's; within the bounds."""
    if given is not None and not MIN_INPUT_SIZE <= given <= MAX_INPUT_SIZE:
        raise InvalidArgument(f"--input-size {given} px is outside {MIN_INPUT_SIZE}-"
                              f"{MAX_INPUT_SIZE} px, the face crop sizes supported")
    inits = {i.name for i in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in inits]
    if not inputs:
        raise UserModelError(f"{name}: the model has no input (its output does not depend on "
                             "an image)")
    dims = [d.dim_value if d.HasField("dim_value") else None
            for d in inputs[0].type.tensor_type.shape.dim]
    shape = "x".join(str(d.dim_value) if d.HasField("dim_value") else d.dim_param or "?"
                     for d in inputs[0].type.tensor_type.shape.dim)
    if dims and (len(dims) != 4 or dims[1] not in (None, 3)):
        raise UserModelError(f"{name}: its input '{inputs[0].name}' is {shape}, not (N, 3, H, "
                             "W) RGB images")
    declared = {d for d in dims[2:] if d is not None} if dims else set()
    if len(declared) > 1 or (declared and None in dims[2:]):
        raise UserModelError(f"{name}: its input '{inputs[0].name}' is {shape}: only square crops "
                             "(H = W) are supported")
    size = declared.pop() if declared else None
    if given is not None and size is not None and given != size:
        raise InvalidArgument(f"--input-size {given} contradicts the model's declared input "
                              f"{shape}; leave --input-size out (it is read from the model)")
    size = size or given or template_size
    if not size:
        raise InvalidArgument("custom --points need --input-size (the model does not declare "
                              "its input size)")
    if not MIN_INPUT_SIZE <= size <= MAX_INPUT_SIZE:
        what = "--input-size" if given is not None else "the model's declared input size"
        raise InvalidArgument(f"{what} {size} px is outside {MIN_INPUT_SIZE}-{MAX_INPUT_SIZE} "
                              "px, the face crop sizes supported")
    return size


def self_contained(proto: Any, path: Path, row: dict[str, Any], folder: Path, external: bool,
                   say: Log) -> Path:
    """The file to check and store: ``path`` itself, or a copy in ``folder`` (a temporary
    folder the caller removes) with the external weights inline and a fixed batch made free
    (checked on onnxruntime)."""
    import onnx

    from facexplain.backbones.onnx_batch import dynamic_batch

    new, batch = dynamic_batch(proto, path, row["output"], int(row["size"]))
    if batch is None and not external:
        return path
    rewritten = folder / path.name  # errors name the user's file
    onnx.save(new, str(rewritten))
    if batch is not None:
        row["fixed_batch"] = batch
        say(f"{path.name} takes a fixed batch of {batch}: made it take any batch (same outputs "
            "on onnxruntime); the registered copy is the rewritten graph")
    if external:
        say(f"{path.name} keeps its weights in {len(row['external_data'])} external file(s): "
            "the registered copy holds them inline")
    return rewritten
