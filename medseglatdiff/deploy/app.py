"""The MONAI Deploy application: a DICOM series or image files in, mask + confidence map out.

DICOM input (a folder of DICOM files, searched recursively)::

    DICOMDataLoaderOperator -> DICOMSeriesSelectorOperator -> DicomEnsembleOperator -> DICOMSegmentationWriterOperator
                                          \\______________________________________________/

writes ``OUTPUT/<SOPInstanceUID>.dcm`` (DICOM SEG, one segment per class or region) and, from ``medseg predict``,
the mask, mean probability and confidence map as NIfTI in the series' geometry plus an overlay PNG. Any other input
(an image file or a folder of images) runs :class:`FileEnsembleOperator`: outputs in the input's format.

Run locally with ``python -m medseglatdiff.deploy -i IN -o OUT -m MODEL`` (``MODEL``: see
:mod:`medseglatdiff.deploy.model`); in a MONAI Application Package the same paths come from
``HOLOSCAN_INPUT_PATH``, ``HOLOSCAN_OUTPUT_PATH`` and ``HOLOSCAN_MODEL_PATH``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from holoscan.conditions import CountCondition
from monai.deploy.core import Application
from monai.deploy.operators.dicom_data_loader_operator import DICOMDataLoaderOperator
from monai.deploy.operators.dicom_seg_writer_operator import DICOMSegmentationWriterOperator, SegmentDescription
from monai.deploy.operators.dicom_series_selector_operator import DICOMSeriesSelectorOperator
from monai.deploy.operators.dicom_utils import ModelInfo
from pydicom.sr.codedict import codes

from medseglatdiff.deploy.dicom import is_dicom_input
from medseglatdiff.deploy.model import DeployModel, resolve_model
from medseglatdiff.deploy.operators import DicomEnsembleOperator, FileEnsembleOperator

logger = logging.getLogger(__name__)


def segment_descriptions(model: DeployModel) -> list[SegmentDescription]:
    """The SEG's segments, one per class or region of the model (coded as lesions, SNOMED CT); segment ``k`` holds
    the voxels the operator numbered ``k``."""
    several = len(model.segments) > 1
    return [
        SegmentDescription(
            segment_label=name if several else model.segment_label,
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=codes.SCT.Lesion,
            algorithm_name=f"medseglatdiff {model.name}",
            algorithm_family=codes.DCM.ArtificialIntelligence,
            algorithm_version=model.version,
        )
        for name, _ in model.segments
    ]


class EnsembleSegmentationApp(Application):
    """Latent diffusion sample-ensemble segmentation (medseglatdiff) as a MONAI Deploy application.

    Args:
        selection_rules: JSON rules of ``DICOMSeriesSelectorOperator`` (default: every series; the first is
            segmented).
    """

    def __init__(self, *args, selection_rules: str = "", **kwargs) -> None:
        self.selection_rules = selection_rules
        super().__init__(*args, **kwargs)

    def compose(self) -> None:
        context = Application.init_app_context(self.argv)
        input_path, output_path = Path(context.input_path), Path(context.output_path)
        model = resolve_model(context.model_path)
        logger.info("input %s, output %s, model %s", input_path, output_path, model.model_dir)
        if not is_dicom_input(input_path):
            self.add_operator(
                FileEnsembleOperator(
                    self,
                    CountCondition(self, 1),
                    model=model,
                    input_path=input_path,
                    output_folder=output_path,
                    name="ensemble",
                )
            )
            return
        loader = DICOMDataLoaderOperator(self, CountCondition(self, 1), input_folder=input_path, name="dicom_loader")
        selector = DICOMSeriesSelectorOperator(self, rules=self.selection_rules, name="series_selector")
        workdir = Path(context.workdir) if context.workdir else None
        ensemble = DicomEnsembleOperator(self, model=model, output_folder=output_path, workdir=workdir, name="ensemble")
        writer = DICOMSegmentationWriterOperator(
            self,
            segment_descriptions=segment_descriptions(model),
            output_folder=output_path,
            model_info=ModelInfo(creator="medseglatdiff", name=model.name, version=model.version),
            name="dicom_seg_writer",
        )
        self.add_flow(loader, selector, {("dicom_study_list", "dicom_study_list")})
        self.add_flow(selector, ensemble, {("study_selected_series_list", "study_selected_series_list")})
        self.add_flow(selector, writer, {("study_selected_series_list", "study_selected_series_list")})
        self.add_flow(ensemble, writer, {("seg_image", "seg_image")})
