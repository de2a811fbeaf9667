"""Deconvnet (Zeiler & Fergus) of the pair similarity: ReLUs pass only positive gradients."""

from facexplain.explain.methods._gradient import (
    GRADIENT_DESCRIPTION,
    MAGNITUDE,
    SIGNED_MAPS,
    gradient_builder,
)
from facexplain.explain.registry import MethodInfo, register_method

INFO = register_method(MethodInfo(
    name="deconv", title="Deconvolution", family="black-box",
    description=GRADIENT_DESCRIPTION, maps=(*SIGNED_MAPS, MAGNITUDE),
    build=gradient_builder("deconv"), magnitude_map="magnitude",
))
