"""MTCNN's model files: the facenet-pytorch 2.6.0 weights set-up fetches, and the onnxruntime
graphs it exports from them (``align.mtcnn_nets.build_net_runtime``).

Why a module of its own: set-up (``asset_catalog``) and detection read these facts without
importing torch, which the nets themselves need.
"""

from __future__ import annotations

from facexplain.assets import AssetFile, DerivedFile, RegistryPackage
from facexplain.onnxrt import runtime_name

NET_NAMES = ("pnet", "rnet", "onet")
FACENET_PYTORCH = RegistryPackage("pypi", "facenet-pytorch", "2.6.0")
WEIGHTS: dict[str, AssetFile] = {
    "pnet": AssetFile("mtcnn/pnet.pt", FACENET_PYTORCH, "facenet_pytorch/data/pnet.pt",
                      "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f"),
    "rnet": AssetFile("mtcnn/rnet.pt", FACENET_PYTORCH, "facenet_pytorch/data/rnet.pt",
                      "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86"),
    "onet": AssetFile("mtcnn/onet.pt", FACENET_PYTORCH, "facenet_pytorch/data/onet.pt",
                      "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d"),
}
RUNTIMES: dict[str, DerivedFile] = {
    n: DerivedFile(runtime_name(f"mtcnn-{n}"), "facexplain.align.mtcnn_nets:build_net_runtime")
    for n in NET_NAMES
}
