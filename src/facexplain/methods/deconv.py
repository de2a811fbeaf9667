"""Deconvnet (Zeiler & Fergus) of the pair similarity: ReLUs pass only positive gradients."""

from facexplain.methods._gradient import register_pixel_method

INFO = register_pixel_method(
    "deconv", "Deconvolution",
    magnitude_reading="bright at the image patterns the features behind the similarity respond "
    "to (the signal is sent back through each ReLU only where it is positive): what the model "
    "looked at, not whether the faces match or differ there.",
)
