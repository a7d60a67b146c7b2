"""``python -m medseglatdiff.deploy -i IN -o OUT -m MODEL``: run the MONAI Deploy application locally.

Also the entry of the MONAI Application Package (``monai-deploy package medseglatdiff/deploy ...``), where
the paths come from ``HOLOSCAN_INPUT_PATH``, ``HOLOSCAN_OUTPUT_PATH`` and ``HOLOSCAN_MODEL_PATH``.
"""

from __future__ import annotations

import sys

from medseglatdiff.errors import MedsegError

DEPLOY_HINT = 'the deploy app needs the `deploy` extra: pip install "medseglatdiff[deploy]"'


def main() -> int:
    """Build and run :class:`~medseglatdiff.deploy.app.EnsembleSegmentationApp`; 0 on success, 2 on a user error."""
    try:
        from medseglatdiff.deploy.app import EnsembleSegmentationApp
    except ImportError as exc:
        print(f"error: {DEPLOY_HINT} ({exc})", file=sys.stderr)
        return 2
    try:
        EnsembleSegmentationApp().run()
    except MedsegError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
