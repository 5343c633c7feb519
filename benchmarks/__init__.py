"""Benchmarks of the project's performance claims (``make bench``; see benchmarks/results/).

Each module runs alone with ``python -m benchmarks.<name> [--quick]``, writes
``benchmarks/results/<name>.json`` and refreshes ``benchmarks/results/RESULTS.md``.

What they share: ``machine`` (where and when), ``stats`` (the one percentile, nearest-rank),
``report`` (command line, markdown, results files), ``in_process`` (the stack in this process),
``local_stack`` (the `make dev` stack, over HTTP), ``seeded_history`` (an archive written
directly), ``aws_calls`` (every AWS call, and who made it), ``timers`` and ``environment``.
The HTTP client is ``tools.api_client``, shared with the tests and ``load/``.
"""
