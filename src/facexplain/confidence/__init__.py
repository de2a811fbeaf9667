"""How far to trust a verdict: calibrated P(same | score), its held-out quality, a selective
rule that answers "not sure" to keep errors under a chosen rate, and the scope of photos the
calibration covers. Pure numerics (numpy, scikit-learn) over scores and labels."""
