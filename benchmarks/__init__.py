"""Benchmarks of the project's performance claims (``make bench``; see benchmarks/results/).

Each module runs alone with ``python -m benchmarks.<name> [--quick]``, writes
``benchmarks/results/<name>.json`` and refreshes ``benchmarks/results/RESULTS.md``.
"""
