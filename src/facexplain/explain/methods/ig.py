"""Integrated gradients (Sundararajan et al.) from a reference image to the pair."""

from facexplain.explain.methods._gradient import register_pixel_method

INFO = register_pixel_method(
    "ig", "Integrated gradients",
    "Path integral of the pair similarity's gradient from a reference image to "
    "each face (Captum); the attributions add up to the similarity change.",
)
