"""Reading and writing images with their geometry, and atomic file writes."""

from medseglatdiff.io.atomic import atomic_path, write_json_atomic
from medseglatdiff.io.geometry import Geometry
from medseglatdiff.io.readers import LoadedImage, read_image, supported_suffix
from medseglatdiff.io.writers import write_image

__all__ = [
    "Geometry",
    "LoadedImage",
    "atomic_path",
    "read_image",
    "supported_suffix",
    "write_image",
    "write_json_atomic",
]
