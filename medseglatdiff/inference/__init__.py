"""Sampling ensembles of masks and turning them into a segmentation plus confidence maps."""
