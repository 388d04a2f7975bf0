"""`sagabank bench`: side-by-side benchmarks that print figures (never timed assertions).

plan.py          the seeded transfer and order plans every system gets
loads.py         the load generators (aiohttp for sagabank, the naive design's own client)
scenarios.py     sagabank and the naive design over HTTP; no-op sagas, recovery, memory in process
cqrs_saga.py     python-cqrs's saga engine under the same load (the `bench` extra)
orders.py        the order saga end to end on sagabank (`--role all`)
cqrs_order.py    the same order saga on python-cqrs's engine, against the same services
order_books.py   the order bench's stock before a run and its audit of the books after it
order_report.py  the order scenario's runs, table and ratios in `sagabank bench`
library.py       the saga library against python-cqrs in one process, on the same order steps
                 (`python -m sagabank_tools.bench.library`; its load and python-cqrs side in
                 library_load.py and library_cqrs.py)
measure.py       CPU, RSS, latency figures, medians and ratios
runner.py        the typer command: repetitions, medians, ratios, the issue's targets, JSON
"""
