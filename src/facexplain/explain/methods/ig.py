"""Integrated gradients (Sundararajan et al.) from a reference image to the pair."""

from facexplain.explain.methods._gradient import MAGNITUDE, SIGNED_MAPS, gradient_builder
from facexplain.explain.registry import MethodInfo, register_method

INFO = register_method(MethodInfo(
    name="ig", title="Integrated gradients", family="black-box",
    description="Path integral of the pair similarity's gradient from a reference image to "
    "each face (Captum); the attributions add up to the similarity change.",
    maps=(*SIGNED_MAPS, MAGNITUDE), build=gradient_builder("ig"), magnitude_map="magnitude",
))
