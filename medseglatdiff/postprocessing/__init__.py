"""Mask postprocessing applied when the model selection enabled it (nnU-Net's rule)."""
