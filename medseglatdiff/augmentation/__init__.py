"""nnU-Net-style batchgenerators augmentation, applied identically to the image and every rater mask."""

from medseglatdiff.augmentation.batchgenerators_aug import (
    AugmentationParams,
    BatchgeneratorsTransformd,
    build_augmentation,
    initial_patch_size,
)

__all__ = ["AugmentationParams", "BatchgeneratorsTransformd", "build_augmentation", "initial_patch_size"]
