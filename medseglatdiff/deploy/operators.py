"""MONAI Deploy operators that run ``medseg predict`` with an exported bundle.

- :class:`DicomEnsembleOperator`: the first selected DICOM series (from the SDK's ``DICOMSeriesSelectorOperator``)
  -> predict (mask, probability and confidence NIfTI in the series' geometry, overlay PNG) -> the mask as one
  frame per source instance, for the SDK's ``DICOMSegmentationWriterOperator``.
- :class:`FileEnsembleOperator`: an image file or a folder of images (PNG/JPEG, NIfTI, MHA/NRRD) -> predict,
  outputs in the input's format.

Both need the ``deploy`` extra (``pip install "medseglatdiff[deploy]"``).
"""

from __future__ import annotations

import logging
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from monai.deploy.core import Fragment, Operator, OperatorSpec

from medseglatdiff.deploy.dicom import gather_series, mask_frames, series_files
from medseglatdiff.deploy.model import DeployModel
from medseglatdiff.errors import MedsegError
from medseglatdiff.inference.layout import PredictionLayout
from medseglatdiff.inference.predict import predict
from medseglatdiff.io.readers import read_image

logger = logging.getLogger(__name__)


def segment_numbers(label_map: np.ndarray, segments: tuple[tuple[str, int], ...]) -> np.ndarray:
    """A label map's values as SEG segment numbers (the value of segment ``k``, counted from 1, becomes ``k``)."""
    lookup = np.zeros(max(int(label_map.max(initial=0)), max(v for _, v in segments)) + 1, dtype=np.uint8)
    for number, (_, value) in enumerate(segments, start=1):
        lookup[value] = number
    return lookup[np.asarray(label_map).astype(np.int64)]


def _predict(model: DeployModel, input_path: Path, output: Path) -> dict[str, Any]:
    return predict(
        input_path,
        output,
        model.model_dir,
        num_samples=model.num_samples,
        num_inference_steps=model.num_inference_steps,
        progress=False,
    )


class DicomEnsembleOperator(Operator):
    """Predict the first selected series; emit its mask as ``(instances, rows, cols)`` uint8 frames.

    Named input:
        study_selected_series_list: ``List[StudySelectedSeries]`` from ``DICOMSeriesSelectorOperator``.
    Named output:
        seg_image: the frames, in the order of the series' instances (what the SEG writer expects).
    File output:
        ``output_folder/<SeriesInstanceUID>.nii.gz`` (mask), ``probability/``, ``confidence/``, ``overlays/``,
        ``prediction.json`` (see :mod:`medseglatdiff.inference.layout`).

    Args:
        fragment: the application.
        model: the bundle to run.
        output_folder: where predict writes.
        workdir: where the series' files are gathered for predict (default: the system's temporary folder).
    """

    def __init__(
        self,
        fragment: Fragment,
        *args: Any,
        model: DeployModel,
        output_folder: Path,
        workdir: Path | None = None,
        **kwargs: Any,
    ) -> None:
        self.model = model
        self.output_folder = Path(output_folder)
        self.workdir = Path(workdir) if workdir else None
        self.input_name_series = "study_selected_series_list"
        self.output_name_seg = "seg_image"
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        spec.input(self.input_name_series)
        spec.output(self.output_name_seg)

    def compute(self, op_input: Any, op_output: Any, context: Any) -> None:
        selected = op_input.receive(self.input_name_series)
        if not selected or not selected[0].selected_series:
            raise ValueError("no DICOM series selected from the input folder")
        series = selected[0].selected_series[0].series
        datasets = [instance.get_native_sop_instance() for instance in series.get_sop_instances()]
        case = re.sub(r"[^0-9A-Za-z._-]", "_", str(getattr(series, "SeriesInstanceUID", "") or "series"))
        self.output_folder.mkdir(parents=True, exist_ok=True)
        if self.workdir is not None:
            self.workdir.mkdir(parents=True, exist_ok=True)
        files = series_files(datasets)
        with tempfile.TemporaryDirectory(dir=self.workdir) as tmp:
            folder = gather_series(files, Path(tmp) / case)
            logger.info("predicting DICOM series %s (%d instances) with %s", case, len(datasets), self.model.model_dir)
            try:
                _predict(self.model, folder, self.output_folder)
            except MedsegError as exc:  # name the series and where its files are, not the temporary folder
                message = str(exc).replace(str(folder), f"DICOM series {case}")
                raise MedsegError(f"{message} (series files in {files[0].parent})") from exc
        mask = read_image(PredictionLayout(self.output_folder, ".nii.gz").mask(case))
        frames = segment_numbers(mask_frames(mask.array[0], mask.geometry, datasets), self.model.segments)
        logger.info("mask: %d foreground pixels in %d frames", int(frames.astype(bool).sum()), frames.shape[0])
        op_output.emit(frames, self.output_name_seg)


class FileEnsembleOperator(Operator):
    """Predict an image file or a folder of images; outputs in the input's format (no ports).

    Args:
        fragment: the application.
        model: the bundle to run.
        input_path: the image file or folder.
        output_folder: where predict writes.
    """

    def __init__(
        self, fragment: Fragment, *args: Any, model: DeployModel, input_path: Path, output_folder: Path, **kwargs: Any
    ) -> None:
        self.model = model
        self.input_path = Path(input_path)
        self.output_folder = Path(output_folder)
        super().__init__(fragment, *args, **kwargs)

    def setup(self, spec: OperatorSpec) -> None:
        pass

    def compute(self, op_input: Any, op_output: Any, context: Any) -> None:
        record = _predict(self.model, self.input_path, self.output_folder)
        logger.info("predicted %d case(s) into %s", len(record["cases"]), self.output_folder)
