"""Preprocessing as planned (crop to non-zero, normalise, resample) and its inverse back to the original grid."""
