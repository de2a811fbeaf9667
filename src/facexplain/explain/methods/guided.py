"""Guided back-propagation (Springenberg et al.) of the pair similarity."""

from facexplain.explain.methods._gradient import (
    GRADIENT_DESCRIPTION,
    MAGNITUDE,
    SIGNED_MAPS,
    gradient_builder,
)
from facexplain.explain.registry import MethodInfo, register_method

INFO = register_method(MethodInfo(
    name="guided", title="Guided back-propagation", family="black-box",
    description=GRADIENT_DESCRIPTION, maps=(*SIGNED_MAPS, MAGNITUDE),
    build=gradient_builder("guided"), magnitude_map="magnitude",
))
