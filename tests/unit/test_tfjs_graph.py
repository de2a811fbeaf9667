"""The TF.js graph executor on tiny hand-made graphs, checked against direct numpy loops."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from facexplain.backbones.tfjs_graph import (
    TFJSGraphModule,
    UnsupportedOp,
    parse_graph_model,
    same_pads,
)
from facexplain.errors import UnknownNode

# ------------------------------------------------------------------ graph-writing helpers


def _s(text: str) -> dict[str, str]:
    return {"s": base64.b64encode(text.encode()).decode()}


def _ints(*values: int) -> dict[str, Any]:
    return {"list": {"i": [str(v) for v in values]}}


def _node(name: str, op: str, inputs: tuple[str, ...] = (), **attr: Any) -> dict[str, Any]:
    return {"name": name, "op": op, "input": list(inputs), "attr": attr}


def _conv_attrs(stride: int, padding: str) -> dict[str, Any]:
    return {"strides": _ints(1, stride, stride, 1), "padding": _s(padding),
            "data_format": _s("NHWC"), "dilations": _ints(1, 1, 1, 1)}


def _write(tmp_path: Path, nodes: list[dict[str, Any]], weights: dict[str, np.ndarray],
           quantize: dict[str, str] | None = None) -> Path:
    """model.json + one shard; ``quantize`` maps weight name -> 'float16' or 'uint8'."""
    specs, blobs = [], []
    for name, arr in weights.items():
        is_int = arr.dtype.kind in "iu"
        spec: dict[str, Any] = {"name": name, "shape": list(arr.shape),
                                "dtype": "int32" if is_int else "float32"}
        mode = (quantize or {}).get(name)
        if mode == "float16":
            spec["quantization"] = {"dtype": "float16", "original_dtype": "float32"}
            blobs.append(arr.astype("<f2").tobytes())
        elif mode == "uint8":
            lo, hi = float(arr.min()), float(arr.max())
            scale = (hi - lo) / 255
            spec["quantization"] = {"dtype": "uint8", "scale": scale, "min": lo}
            blobs.append(np.round((arr - lo) / scale).astype("u1").tobytes())
        else:
            blobs.append(arr.astype("<i4" if is_int else "<f4").tobytes())
        specs.append(spec)
    consts = [_node(n, "Const", dtype={"type": "DT_FLOAT"}) for n in weights]
    model = {"format": "graph-model", "modelTopology": {"node": consts + nodes},
             "weightsManifest": [{"paths": ["w.bin"], "weights": specs}]}
    (tmp_path / "w.bin").write_bytes(b"".join(blobs))
    path = tmp_path / "model.json"
    path.write_text(json.dumps(model))
    return path


def _placeholder(h: int, w: int, c: int) -> dict[str, Any]:
    dims = [{"size": "-1"}, {"size": str(h)}, {"size": str(w)}, {"size": str(c)}]
    return _node("x", "Placeholder", shape={"shape": {"dim": dims}})


def _ref_conv(x: np.ndarray, w: np.ndarray, stride: int, pads: tuple[int, int, int, int],
              depthwise: bool = False) -> np.ndarray:
    """NHWC convolution by loops; pads = (top, bottom, left, right); w is HWIO or HWCM."""
    xp = np.pad(x, ((0, 0), pads[:2], pads[2:], (0, 0))).astype(np.float64)
    kh, kw, cin, cm = w.shape
    oh = (xp.shape[1] - kh) // stride + 1
    ow = (xp.shape[2] - kw) // stride + 1
    cout = cin * cm if depthwise else cm
    out = np.zeros((x.shape[0], oh, ow, cout))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            if depthwise:
                out[:, i, j, :] = np.einsum("nhwc,hwcm->ncm", patch, w).reshape(x.shape[0], -1)
            else:
                out[:, i, j, :] = np.einsum("nhwc,hwco->no", patch, w)
    return out


def _run(path: Path, x: np.ndarray, nodes: list[str], **kw: bool) -> dict[str, np.ndarray]:
    module = TFJSGraphModule.from_file(path, **kw)
    out = module.forward_nodes(torch.from_numpy(x).permute(0, 3, 1, 2), nodes)
    return {k: (v.permute(0, 2, 3, 1) if v.dim() == 4 else v).numpy() for k, v in out.items()}


# ------------------------------------------------------------------------------------ tests


def test_same_pads_match_tf_rule() -> None:
    assert same_pads(224, 3, 2, 1) == (0, 1)  # even input, stride 2: the extra pixel goes after
    assert same_pads(7, 3, 2, 1) == (1, 1)
    assert same_pads(5, 1, 1, 1) == (0, 0)
    assert same_pads(6, 3, 1, 2) == (2, 2)  # dilated 3x3 is 5 wide


@pytest.mark.parametrize("size", [6, 7])
@pytest.mark.parametrize("fast", [False, True])
def test_conv_same_stride2_matches_hand_computation(tmp_path: Path, size: int, fast: bool
                                                    ) -> None:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, 3, 2, 4)).astype(np.float32)
    x = rng.standard_normal((2, size, size, 2)).astype(np.float32)
    path = _write(tmp_path, [_placeholder(size, size, 2),
                             _node("y", "Conv2D", ("x", "w"), **_conv_attrs(2, "SAME"))], {"w": w})
    top, bottom = same_pads(size, 3, 2, 1)
    expected = _ref_conv(x, w, 2, (top, bottom, top, bottom))
    assert (top, bottom) == ((0, 1) if size == 6 else (1, 1))
    got = _run(path, x, ["y"], fuse=fast, channels_last=fast)["y"]
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_depthwise_with_multiplier_same_stride2(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    w = rng.standard_normal((3, 3, 3, 2)).astype(np.float32)  # channel multiplier 2
    x = rng.standard_normal((1, 8, 8, 3)).astype(np.float32)
    path = _write(tmp_path, [
        _placeholder(8, 8, 3),
        _node("y", "DepthwiseConv2dNative", ("x", "w"), **_conv_attrs(2, "SAME"))], {"w": w})
    expected = _ref_conv(x, w, 2, (0, 1, 0, 1), depthwise=True)
    np.testing.assert_allclose(_run(path, x, ["y"])["y"], expected, atol=1e-5)


def _chain_graph(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """conv -> *scale -> +shift -> Relu -> Minimum(6) -> Maximum(0): what Keras exports."""
    rng = np.random.default_rng(2)
    weights = {"w": rng.standard_normal((3, 3, 3, 4)).astype(np.float32),
               "scale": rng.uniform(0.5, 2, 4).astype(np.float32),
               "shift": rng.standard_normal(4).astype(np.float32),
               "six": np.array(6.0, np.float32), "zero": np.array(0.0, np.float32),
               "axes": np.array([1, 2], np.int32)}
    nodes = [_placeholder(5, 5, 3),
             _node("conv", "Conv2D", ("x", "w"), **_conv_attrs(1, "SAME")),
             _node("mul", "Mul", ("conv", "scale")),
             _node("add", "AddV2", ("mul", "shift")),
             _node("relu", "Relu", ("add",)),
             _node("min", "Minimum", ("relu", "six")),
             _node("clip", "Maximum", ("min", "zero")),
             _node("pool", "Mean", ("clip", "axes"), keep_dims={"b": False})]
    return _write(tmp_path, nodes, weights), weights


def test_fused_chain_equals_op_by_op_and_exposes_every_node(tmp_path: Path) -> None:
    path, wts = _chain_graph(tmp_path)
    x = np.random.default_rng(3).standard_normal((2, 5, 5, 3)).astype(np.float32) * 3
    conv = _ref_conv(x, wts["w"], 1, (1, 1, 1, 1))
    add = conv * wts["scale"] + wts["shift"]
    clip = np.clip(add, 0, 6)
    fused = _run(path, x, ["clip", "pool"])
    plain = _run(path, x, ["clip", "pool"], fuse=False, channels_last=False)
    for out in (fused, plain):
        np.testing.assert_allclose(out["clip"], clip, atol=1e-4)
        np.testing.assert_allclose(out["pool"], clip.mean(axis=(1, 2)), atol=1e-4)
    module = TFJSGraphModule.from_file(path)
    assert len(module.plan(["pool"]).steps) == 2  # conv+affine+clamp, then the mean
    inner = _run(path, x, ["add", "pool"])  # asking for an inner node keeps it
    np.testing.assert_allclose(inner["add"], add, atol=1e-4)


def test_prelu_pattern_and_pad_fold(tmp_path: Path) -> None:
    """Pad -> VALID conv -> max(0,y) + gamma*min(0,y) -> Reshape (flattens in NHWC order)."""
    rng = np.random.default_rng(4)
    weights = {"paddings": np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32),
               "w": rng.standard_normal((3, 3, 2, 3)).astype(np.float32),
               "zero_a": np.array(0.0, np.float32), "zero_b": np.array(0.0, np.float32),
               "gamma": rng.uniform(0.1, 0.3, 3).astype(np.float32),
               "shape": np.array([-1, 48], np.int32)}
    nodes = [_placeholder(4, 4, 2),
             _node("pad", "Pad", ("x", "paddings")),
             _node("conv", "Conv2D", ("pad", "w"), **_conv_attrs(1, "VALID")),
             _node("max", "Maximum", ("zero_a", "conv")),
             _node("min", "Minimum", ("zero_b", "conv")),
             _node("mul", "Mul", ("gamma", "min")),
             _node("prelu", "AddV2", ("max", "mul")),
             _node("flat", "Reshape", ("prelu", "shape"))]
    path = _write(tmp_path, nodes, weights)
    x = rng.standard_normal((2, 4, 4, 2)).astype(np.float32)
    y = _ref_conv(x, weights["w"], 1, (1, 1, 1, 1))
    prelu = np.where(y < 0, y * weights["gamma"], y)
    for kw in ({}, {"fuse": False, "channels_last": False}):
        out = _run(path, x, ["prelu", "flat"], **kw)
        np.testing.assert_allclose(out["prelu"], prelu, atol=1e-5)
        np.testing.assert_allclose(out["flat"], prelu.reshape(2, 48), atol=1e-5)
    assert len(TFJSGraphModule.from_file(path).plan(["prelu"]).steps) == 1


def test_fused_conv_bias_relu6_and_matmul(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    weights = {"w": rng.standard_normal((1, 1, 3, 4)).astype(np.float32) * 4,
               "b": rng.standard_normal(4).astype(np.float32),
               "axes": np.array([1, 2], np.int32),
               "k": rng.standard_normal((4, 2)).astype(np.float32),
               "kb": rng.standard_normal(2).astype(np.float32)}
    fused = {"fused_ops": {"list": {"s": [_s("BiasAdd")["s"], _s("Relu6")["s"]]}},
             "num_args": {"i": "1"}}
    nodes = [_placeholder(3, 3, 3),
             _node("conv", "_FusedConv2D", ("x", "w", "b"), **_conv_attrs(1, "SAME"), **fused),
             _node("pool", "Mean", ("conv", "axes")),
             _node("fc", "_FusedMatMul", ("pool", "k", "kb"),
                   fused_ops={"list": {"s": [_s("BiasAdd")["s"]]}}, num_args={"i": "1"})]
    path = _write(tmp_path, nodes, weights)
    x = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    conv = np.clip(np.einsum("nhwc,co->nhwo", x, weights["w"][0, 0]) + weights["b"], 0, 6)
    fc = conv.mean(axis=(1, 2)) @ weights["k"] + weights["kb"]
    out = _run(path, x, ["conv", "fc"])
    np.testing.assert_allclose(out["conv"], conv, atol=1e-5)
    np.testing.assert_allclose(out["fc"], fc, atol=1e-5)


def test_quantized_weights_are_dequantized(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    a = rng.standard_normal(10).astype(np.float32)
    b = rng.standard_normal(10).astype(np.float32)
    path = _write(tmp_path, [], {"a": a, "b": b}, quantize={"a": "float16", "b": "uint8"})
    weights = parse_graph_model(path).weights
    np.testing.assert_array_equal(weights["a"], a.astype(np.float16).astype(np.float32))
    step = (b.max() - b.min()) / 255
    np.testing.assert_allclose(weights["b"], b, atol=step / 2 + 1e-6)


def test_unsupported_op_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, [_placeholder(2, 2, 1), _node("y", "Erf", ("x",))], {})
    module = TFJSGraphModule.from_file(path)
    with pytest.raises(UnsupportedOp, match="'Erf'"):
        module.forward_nodes(torch.zeros(1, 1, 2, 2), ["y"])
    with pytest.raises(KeyError, match="nope"):
        module.forward_nodes(torch.zeros(1, 1, 2, 2), ["nope"])


def test_gradient_reaches_the_input(tmp_path: Path) -> None:
    path, _ = _chain_graph(tmp_path)
    module = TFJSGraphModule.from_file(path)
    x = (torch.randn(1, 3, 5, 5) * 3).requires_grad_()
    module.forward_nodes(x, ["pool"])["pool"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_weights_are_frozen_parameters_and_plans_follow_them(tmp_path: Path) -> None:
    path, _ = _chain_graph(tmp_path)
    module = TFJSGraphModule.from_file(path)
    names = {n for n, _ in module.named_parameters()}
    assert {"w", "scale", "shift"} <= names and "axes" not in names  # int shapes stay buffers
    assert not any(p.requires_grad for p in module.parameters())
    x = torch.randn(2, 3, 5, 5) * 3
    with torch.inference_mode():  # a plan compiled here must still serve a gradient pass
        before = module.forward_nodes(x, ["pool"])["pool"]
    with torch.no_grad():
        module.const("shift").add_(10.0)  # changed in place: the cached plan is stale
        after = module.forward_nodes(x, ["pool"])["pool"]
    assert not torch.allclose(before, after)
    x.requires_grad_()
    module.forward_nodes(x, ["pool"])["pool"].sum().backward()
    assert x.grad is not None
    module.requires_grad_(True)
    module.forward_nodes(x, ["pool"])["pool"].sum().backward()
    assert module.const("w").grad is not None and module.const("w").grad.abs().sum() > 0


def test_unknown_node_is_unknown_node(tmp_path: Path) -> None:
    path, _ = _chain_graph(tmp_path)
    module = TFJSGraphModule.from_file(path)
    assert module.node_names() == ("conv", "mul", "add", "relu", "min", "clip", "pool")
    with pytest.raises(UnknownNode, match="'nope'.*conv"):
        module.forward_nodes(torch.zeros(1, 3, 5, 5), ["pool", "nope"])


def test_onnx_and_tfjs_front_ends_share_one_ir_and_one_compiler(tmp_path: Path) -> None:
    """conv -> batch norm -> prelu -> flatten -> dense, written once as TF.js and once as ONNX:
    the same IR op kinds, the same fused step kinds, the same numbers."""
    from onnx import TensorProto, helper, numpy_helper

    from facexplain.backbones import onnx_graph, tfjs_graph
    from facexplain.backbones.onnx_graph import OnnxGraph

    rng = np.random.default_rng(7)
    w = rng.standard_normal((3, 3, 2, 4)).astype(np.float32)  # HWIO; 3x3 input -> 1x1 output
    bn = [rng.uniform(0.5, 2, 4), rng.standard_normal(4), rng.standard_normal(4),
          rng.uniform(0.5, 2, 4)]
    gamma, beta, mean, var = (v.astype(np.float32) for v in bn)
    alpha = rng.uniform(0.1, 0.3, 4).astype(np.float32)
    k = rng.standard_normal((4, 5)).astype(np.float32)
    tf_path = _write(tmp_path, [
        _placeholder(3, 3, 2),
        _node("conv", "Conv2D", ("x", "w"), **_conv_attrs(1, "VALID")),
        _node("bn", "FusedBatchNormV3", ("conv", "gamma", "beta", "mean", "var"),
              epsilon={"f": 1e-3}),
        _node("act", "Prelu", ("bn", "alpha")),
        _node("flat", "Reshape", ("act", "shape")),
        _node("fc", "MatMul", ("flat", "k"))],
        {"w": w, "gamma": gamma, "beta": beta, "mean": mean, "var": var, "alpha": alpha,
         "shape": np.array([-1, 4], np.int32), "k": k})
    onnx_nodes = [
        helper.make_node("Conv", ["x", "w"], ["conv"]),
        helper.make_node("BatchNormalization", ["conv", "gamma", "beta", "mean", "var"], ["bn"],
                         epsilon=1e-3),
        helper.make_node("PRelu", ["bn", "alpha"], ["act"]),
        helper.make_node("Flatten", ["act"], ["flat"]),
        helper.make_node("Gemm", ["flat", "k"], ["fc"])]
    inits = {"w": w.transpose(3, 2, 0, 1), "gamma": gamma, "beta": beta, "mean": mean,
             "var": var, "alpha": alpha.reshape(4, 1, 1), "k": k}
    model = helper.make_model(helper.make_graph(
        onnx_nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2, 3, 3])],
        [helper.make_tensor_value_info("fc", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.ascontiguousarray(v), n) for n, v in inits.items()]),
        opset_imports=[helper.make_opsetid("", 17)])
    tf_ir = tfjs_graph.to_ir(parse_graph_model(tf_path))
    onnx_ir = onnx_graph.to_ir(model)
    kinds = ["Conv", "BatchNormalization", "PRelu", None, "Gemm"]
    assert [n.op for n in tf_ir.nodes.values()] == [k or "Reshape" for k in kinds]
    assert [n.op for n in onnx_ir.nodes.values()] == [k or "Flatten" for k in kinds]
    assert (tf_ir.layout, onnx_ir.layout) == ("NHWC", "NCHW")
    tf_module = TFJSGraphModule.from_file(tf_path)
    onnx_module = OnnxGraph(model, fold_batchnorm=False)
    tf_steps = [type(s).__name__ for s in tf_module.plan(["fc"]).steps]
    assert tf_steps == [type(s).__name__ for s in onnx_module.plan(["fc"]).steps]
    assert tf_steps == ["ConvStep", "FnStep", "LinearStep"]  # conv+bn+prelu fused in both
    x = torch.randn(2, 2, 3, 3)
    torch.testing.assert_close(tf_module(x, "fc"), onnx_module(x), rtol=1e-5, atol=1e-5)
