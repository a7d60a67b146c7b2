"""Cross-validation over patients and model selection: ``medseg cv`` and ``medseg find_best_configuration``.

See ``docs/cross_validation.md``. Folds come from ``WORK/splits_final.json`` (:mod:`medseglatdiff.training.splits`).
"""

from medseglatdiff.crossval.cross_validate import cross_validate
from medseglatdiff.crossval.find_best import find_best_configuration
from medseglatdiff.crossval.layout import CrossvalLayout

__all__ = ["CrossvalLayout", "cross_validate", "find_best_configuration"]
