"""Neuron-level analysis of a face model (DeepID2+ study): sparsity, selectivity, binary codes,
robustness to occlusion, and the high-dimensional LBP baseline they are compared with."""
