"""Grad-CAM (Selvaraju et al.) of the pair similarity on the backbone's last spatial map."""

from facexplain.method_info import MethodInfo
from facexplain.methods._gradient import SIGNED_MAPS, gradient_builder
from facexplain.methods.registry import register_method

INFO = register_method(MethodInfo(
    name="gradcam", title="Grad-CAM", family="layer",
    description="Gradient-weighted activations of the backbone's last spatial map, upsampled: "
    "similarity = what supports the match, difference = the counterfactual map.",
    maps=SIGNED_MAPS, build=gradient_builder("gradcam"),
    supports=lambda spec: bool(spec.feature_nodes),
))
