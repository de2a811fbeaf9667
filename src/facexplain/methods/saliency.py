"""Gradient saliency (Simonyan et al.) of the pair similarity."""

from facexplain.methods._gradient import register_pixel_method

INFO = register_pixel_method("saliency", "Gradient saliency")
