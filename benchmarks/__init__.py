"""Reproducible speed and accuracy comparisons (not part of the test suite): see ``docs/benchmarks.md``.

Run each from the repository root: ``python -m benchmarks.sampling_speed``,
``python -m benchmarks.training_throughput``, ``python -m benchmarks.equal_budget_accuracy``.
"""
