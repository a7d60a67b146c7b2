"""``python -m medseglatdiff.cli``: the ``medseg`` command."""

from medseglatdiff.cli import main

main()
