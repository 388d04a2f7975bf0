"""`sagabank bench`: side-by-side benchmarks that print figures (never timed assertions).

plan.py       the seeded transfer plan every system gets
loads.py      the load generators (aiohttp for sagabank, the naive design's own client)
scenarios.py  sagabank and the naive design over HTTP; no-op sagas, recovery, memory in process
cqrs_saga.py  python-cqrs's saga engine under the same load (the `bench` extra)
measure.py    CPU, RSS, latency figures and medians
runner.py     the typer command: repetitions, medians, ratios, the issue's targets, JSON
"""
