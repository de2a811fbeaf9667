"""Deconvnet (Zeiler & Fergus) of the pair similarity: ReLUs pass only positive gradients."""

from facexplain.methods._gradient import register_pixel_method

INFO = register_pixel_method("deconv", "Deconvolution")
