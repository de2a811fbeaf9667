"""face-api's 68-point landmark net: the two files set-up takes from npm ``@vladmandic/face-api``.

Why a module of its own: set-up (``asset_catalog``) reads these facts without importing torch,
which the net itself (``align.landmarks68``) needs. dlib's ResNet weights come from the same
package, so its backbone row imports ``FACE_API`` from here: one pinned version for both.
"""

from __future__ import annotations

from facexplain.assets import AssetFile, DerivedFile, RegistryPackage
from facexplain.onnxrt import runtime_name

FACE_API = RegistryPackage("npm", "@vladmandic/face-api", "1.7.15")
WEIGHTS = AssetFile(
    "landmarks68/face_landmark_68_model.bin", FACE_API,
    "package/model/face_landmark_68_model.bin",
    "4611ef65c87d836d03d684b30eec4d195d8b219fa1dd58fc58945831c6b9299b",
)
MANIFEST = AssetFile(
    "landmarks68/face_landmark_68_model-weights_manifest.json", FACE_API,
    "package/model/face_landmark_68_model-weights_manifest.json",
    "ca4886639f86e99b39fed0c155f81b63317225773bd9616716e887b0153389c9",
)
FILES = (WEIGHTS, MANIFEST)
# The net exported at set-up for onnxruntime (photo quality on a torch-free ``verify``).
RUNTIME = DerivedFile(runtime_name("landmarks68"),
                      "facexplain.align.landmarks68_runtime:build_landmarks_runtime")
