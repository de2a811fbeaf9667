"""Fitness of a photo for comparison: measured components, a model-based score, their ranges."""
