"""Training losses for the interpretable heads (margin softmax, xCos regression, diversity)."""
