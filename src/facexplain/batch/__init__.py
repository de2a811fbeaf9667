"""Batch verification and explanation of many pairs on Ray (``facexplain batch ...``).

Only ``runner`` imports Ray, and only when a batch starts: the single-pair commands never do.
"""
