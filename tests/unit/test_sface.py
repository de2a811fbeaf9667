"""The ONNX graph executor and SFace's dequantization, on tiny hand-made graphs (no assets)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from facexplain.backbones.onnx_dequantize import dequantize_block, dequantize_model
from facexplain.backbones.onnx_graph import OnnxGraph, UnsupportedOnnxGraph
from facexplain.errors import UnknownNode


def _model(nodes: list[onnx.NodeProto], inits: dict[str, np.ndarray], x_shape: list[int],
           out: str = "y") -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_tiny_graph_matches_hand_computation() -> None:
    # y = relu((x - 1) * 2 @ W + b), with W given as a Reshape of a flat constant.
    w_flat = np.array([1.0, -1.0, 0.5, 2.0, 0.0, 1.0], dtype=np.float32)
    b = np.array([0.5, -3.0], dtype=np.float32)
    nodes = [
        helper.make_node("Sub", ["x", "one"], ["s"]),
        helper.make_node("Mul", ["s", "two"], ["m"]),
        helper.make_node("Reshape", ["w_flat", "w_shape"], ["w"]),
        helper.make_node("Gemm", ["m", "w", "b"], ["g"]),
        helper.make_node("Relu", ["g"], ["y"]),
    ]
    inits = {"one": np.array([1.0], np.float32), "two": np.array([2.0], np.float32),
             "w_flat": w_flat, "w_shape": np.array([3, 2], np.int64), "b": b}
    graph = OnnxGraph(_model(nodes, inits, [2, 3]))
    x = np.array([[1.0, 2.0, 3.0], [0.0, 1.0, -1.0]], dtype=np.float32)
    out = graph.forward_nodes(torch.from_numpy(x), ["y", "g"])
    # by hand: m = [[0,2,4],[-2,0,-4]]; m @ [[1,-1],[.5,2],[0,1]] = [[1,8],[-2,-2]]; + b
    np.testing.assert_allclose(out["g"].numpy(), [[1.5, 5.0], [-1.5, -5.0]])
    np.testing.assert_allclose(out["y"].numpy(), [[1.5, 5.0], [0.0, 0.0]])
    np.testing.assert_allclose(graph(torch.from_numpy(x)).numpy(), out["y"].numpy())


def _conv_bn_prelu_model(rng: np.random.Generator) -> onnx.ModelProto:
    """Conv (asymmetric pads) -> BN -> PRelu -> depthwise Conv (stride 2) -> BN -> Gemm."""
    c = 4
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[0, 1, 1, 0], strides=[1, 1]),
        helper.make_node("BatchNormalization", ["c1", "g1", "b1", "m1", "v1"], ["bn1"],
                         epsilon=1e-3),
        helper.make_node("PRelu", ["bn1", "slope"], ["p1"]),
        helper.make_node("Conv", ["p1", "w2", "cb2"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2],
                         group=c),
        helper.make_node("BatchNormalization", ["c2", "g2", "b2", "m2", "v2"], ["bn2"]),
        helper.make_node("Flatten", ["bn2"], ["f"]),
        helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1),
    ]

    def bn(prefix: str) -> dict[str, np.ndarray]:
        return {f"g{prefix}": rng.uniform(0.5, 2, c), f"b{prefix}": rng.normal(size=c),
                f"m{prefix}": rng.normal(size=c), f"v{prefix}": rng.uniform(0.1, 2, c)}

    inits = {"w1": rng.normal(size=(c, 3, 3, 3)), "slope": rng.normal(size=(c, 1, 1)) * 0.3,
             "w2": rng.normal(size=(c, 1, 3, 3)), "cb2": rng.normal(size=c),
             "fc": rng.normal(size=(5, c * 4 * 4)), **bn("1"), **bn("2")}
    inits = {k: v.astype(np.float32) for k, v in inits.items()}
    return _model(nodes, inits, [2, 3, 8, 8])


def test_batchnorm_folding_gives_identical_results() -> None:
    rng = np.random.default_rng(0)
    model = _conv_bn_prelu_model(rng)
    x = torch.from_numpy(rng.normal(size=(2, 3, 8, 8)).astype(np.float32))
    plain = OnnxGraph(model, fold_batchnorm=False)
    folded = OnnxGraph(model)
    fast = OnnxGraph(model, channels_last=True)
    assert [n.op for n in folded.nodes].count("BatchNormalization") == 0
    assert [n.op for n in plain.nodes].count("BatchNormalization") == 2
    ref = plain.forward_nodes(x, ["p1", "y"])
    for graph in (folded, fast):
        got = graph.forward_nodes(x, ["p1", "y"])
        for name in ("p1", "y"):
            torch.testing.assert_close(got[name], ref[name], rtol=1e-5, atol=1e-5)
    with pytest.raises(KeyError, match="folded"):
        folded.forward_nodes(x, ["c1"])
    kept = OnnxGraph(model, keep=["c1"])
    torch.testing.assert_close(kept.forward_nodes(x, ["c1"])["c1"],
                               plain.forward_nodes(x, ["c1"])["c1"])


def test_executor_matches_onnxruntime_on_tiny_graph() -> None:
    ort = pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(1)
    model = _conv_bn_prelu_model(rng)
    x = rng.normal(size=(2, 3, 8, 8)).astype(np.float32)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = sess.run(None, {"x": x})[0]
    got = OnnxGraph(model, channels_last=True)(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_executor_is_differentiable_wrt_input_and_maps() -> None:
    rng = np.random.default_rng(2)
    graph = OnnxGraph(_conv_bn_prelu_model(rng))
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    out = graph.forward_nodes(x, ["p1", "y"])
    out["p1"].retain_grad()
    out["y"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert out["p1"].grad is not None and out["p1"].grad.shape == (2, 4, 7, 7)


def test_unsupported_op_is_named() -> None:
    nodes = [helper.make_node("Einsum", ["x", "x"], ["y"], equation="ij,ij->ij")]
    with pytest.raises(UnsupportedOnnxGraph, match="Einsum"):
        OnnxGraph(_model(nodes, {}, [2, 2]))


def test_unknown_node_name_is_a_clear_error() -> None:
    graph = OnnxGraph(_model([helper.make_node("Relu", ["x"], ["y"])], {}, [1, 2]))
    with pytest.raises(KeyError, match="nope"):
        graph.forward_nodes(torch.zeros(1, 2), ["nope"])


def test_dequantize_block_repeats_scales_along_axis() -> None:
    q = np.array([[1, 2, 3, 4, 5], [-1, -2, -3, -4, -5]], dtype=np.int8)
    scale = np.array([[0.5, 2.0, 1.0], [1.0, 0.25, 3.0]], dtype=np.float32)
    zp = np.array([[1, 0, 5], [0, -2, 0]], dtype=np.int8)
    got = dequantize_block(q, scale, zp, axis=1, block_size=2)
    expected = [[(1 - 1) * 0.5, (2 - 1) * 0.5, 3 * 2.0, 4 * 2.0, (5 - 5) * 1.0],
                [-1.0, -2.0, (-3 + 2) * 0.25, (-4 + 2) * 0.25, -15.0]]
    np.testing.assert_allclose(got, expected)


def test_dequantize_model_drops_dequantize_nodes() -> None:
    q = np.arange(-6, 6, dtype=np.int8).reshape(2, 6)
    scale = np.array([[0.1, 0.2], [0.3, 0.4]], dtype=np.float32)
    zp = np.zeros((2, 2), dtype=np.int8)
    nodes = [
        helper.make_node("DequantizeLinear", ["w_quantized", "w_scales", "w_zp"], ["w_deq"],
                         axis=1, block_size=3),
        helper.make_node("Reshape", ["w_deq", "w_shape"], ["w_reshaped"]),
        helper.make_node("Conv", ["x", "w_reshaped"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "q", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6, 2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 2, 2])],
        [numpy_helper.from_array(q, "w_quantized"), numpy_helper.from_array(scale, "w_scales"),
         numpy_helper.from_array(zp, "w_zp"),
         numpy_helper.from_array(np.array([2, 6, 1, 1], np.int64), "w_shape")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    float_model = dequantize_model(model)
    assert [n.op_type for n in float_model.graph.node] == ["Conv"]
    assert list(float_model.graph.node[0].input) == ["x", "w"]
    w = numpy_helper.to_array(float_model.graph.initializer[0])
    np.testing.assert_allclose(w.reshape(2, 6), q * np.repeat(scale, 3, axis=1), rtol=1e-6)
    assert float_model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"


def test_weights_are_frozen_parameters_bn_statistics_buffers() -> None:
    rng = np.random.default_rng(3)
    graph = OnnxGraph(_conv_bn_prelu_model(rng), fold_batchnorm=False, channels_last=True)
    params = dict(graph.named_parameters())
    assert {"w1", "slope", "fc", "g1", "b1"} <= set(params)
    assert {"m1", "v1"} <= set(dict(graph.named_buffers())) and "v1" in graph.state_dict()
    assert not any(p.requires_grad for p in params.values())
    assert params["w1"].is_contiguous(memory_format=torch.channels_last)
    x = torch.from_numpy(rng.normal(size=(2, 3, 8, 8)).astype(np.float32))
    copy = OnnxGraph(_conv_bn_prelu_model(np.random.default_rng(3)), fold_batchnorm=False)
    with torch.no_grad():
        for p in copy.parameters():
            torch.nn.init.normal_(p)
        assert not torch.allclose(copy(x), graph(x))
        copy.load_state_dict(graph.state_dict())
        torch.testing.assert_close(copy(x), graph(x))


def test_node_names_and_unknown_node() -> None:
    graph = OnnxGraph(_conv_bn_prelu_model(np.random.default_rng(4)))
    assert graph.node_names() == ("bn1", "p1", "bn2", "f", "y")  # c1, c2 folded away
    with pytest.raises(UnknownNode, match="'c1' \\(folded"):
        graph.forward_nodes(torch.zeros(2, 3, 8, 8), ["c1"])


def test_more_ops_match_onnxruntime() -> None:
    """Clip, pooling (SAME and explicit pads), Transpose, Softmax, MatMul, Concat through the IR."""
    ort = pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(5)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Constant", [], ["lo"], value=numpy_helper.from_array(
            np.array(0.0, np.float32))),
        helper.make_node("Clip", ["c", "lo", "hi"], ["clip"]),
        helper.make_node("MaxPool", ["clip"], ["mp"], kernel_shape=[3, 3], strides=[2, 2],
                         auto_pad="SAME_UPPER"),
        helper.make_node("AveragePool", ["mp"], ["ap"], kernel_shape=[2, 2], pads=[1, 1, 1, 1],
                         count_include_pad=1),
        helper.make_node("GlobalAveragePool", ["ap"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["g"]),
        helper.make_node("Transpose", ["ap"], ["t"], perm=[0, 2, 3, 1]),
        helper.make_node("Softmax", ["t"], ["sm"], axis=-1),
        helper.make_node("Flatten", ["sm"], ["f"]),
        helper.make_node("MatMul", ["f", "k"], ["mm"]),
        helper.make_node("Concat", ["g", "mm"], ["y"], axis=1),
    ]
    inits = {"w": rng.normal(size=(4, 3, 3, 3)).astype(np.float32),
             "hi": np.array(2.5, np.float32), "k": rng.normal(size=(100, 3)).astype(np.float32)}
    model = _model(nodes, inits, [2, 3, 8, 8])
    x = rng.normal(size=(2, 3, 8, 8)).astype(np.float32)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = sess.run(None, {"x": x})[0]
    for channels_last in (False, True):
        got = OnnxGraph(model, channels_last=channels_last)(torch.from_numpy(x))
        np.testing.assert_allclose(got.detach().numpy(), expected, rtol=1e-4, atol=1e-5)
