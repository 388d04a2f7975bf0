"""`sagabank chaos`: a seeded fault run against real processes on loopback.

schedule.py       which fault hits which delivery, and when the processes die (pure, seeded)
proxy.py          the fault-injecting HTTP proxy between the orchestrator and the account
                  service's process (which hosts the inventory and orders services too)
messages.py       the requests and replies the proxy handles (transport-free values)
serving.py        uvicorn serving the proxy's ASGI app on loopback, inside the chaos process
cluster.py        the child processes and the one place their settings (database URLs) are built
load.py           the seeded transfer plan and the client that submits any plan through the kills
order_plan.py     the seeded order plan and the stock it opens
modes.py          what differs between a transfer run and an order run: plan, routes, checks
settling.py       the end of a run over HTTP: settle, retry the parked, what the run left behind
records.py        the account service's records, checked against each transfer's final status
order_records.py  the three services' records, checked against each order's final status
report.py         the report: figures, violations, rich table, JSON
runner.py         one run from start to audit
cli.py            the typer command
"""
