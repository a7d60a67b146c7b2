"""Export a trained model as a MONAI bundle (``medseg export``); see ``docs/deployment.md``.

``export(model, out)`` writes the bundle; :class:`EnsembleSampler` is its ``network_def``; the bundle's
``inference.json`` calls :func:`locate_bundle_root` and :func:`missing_argument`.
"""

from medseglatdiff.export.bundle import export
from medseglatdiff.export.config import MissingArgumentError, inference_config, locate_bundle_root, missing_argument
from medseglatdiff.export.metadata import bundle_metadata, schema_path, verify_bundle
from medseglatdiff.export.network import EnsembleSampler

__all__ = [
    "EnsembleSampler",
    "MissingArgumentError",
    "bundle_metadata",
    "export",
    "inference_config",
    "locate_bundle_root",
    "missing_argument",
    "schema_path",
    "verify_bundle",
]
