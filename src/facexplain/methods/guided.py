"""Guided back-propagation (Springenberg et al.) of the pair similarity."""

from facexplain.methods._gradient import register_pixel_method

INFO = register_pixel_method(
    "guided", "Guided back-propagation",
    magnitude_reading="bright at the edges and details that raise the features behind the "
    "similarity (only positive signals pass back through the ReLUs, so it is sharper than the "
    "plain gradient): what the model looked at, not whether the faces match or differ there.",
)
