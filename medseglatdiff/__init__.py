"""medseglatdiff: self-configuring latent diffusion segmentation with sample ensembles and confidence maps."""

__version__ = "0.1.0"
