"""Speed and memory benchmarks (issue #5): ``python -m experiments.benchmarks``.

Each benchmark is a function ``bench_<name>(quick: bool) -> list[Row]`` in one of the modules
below, run in its own subprocess so that its peak RSS is its own. ``--quick`` runs tiny
versions (the tests in ``tests/benchmarks`` call the same functions that way, checking the
outputs are sane, never their speed).

Modules: :mod:`.common` (rows, timing, machine info, the table), :mod:`.linear` (LinUCB /
LinTS simulation and replay, plain-numpy and MABWiser peers), :mod:`.vw` (the VW policy vs
VW's own ``-d file`` driver), :mod:`.ope` (estimators at 10M rows, 100M-row streaming),
:mod:`.apps` (MLflow overhead of a simulate run, joblib vs basic sweep launcher).
"""
