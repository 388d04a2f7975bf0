"""The naive account service: what transfers looked like before sagabank.

Same HTTP contract as `repository_after` where it has the endpoint (POST /debit and /credit,
GET /accounts, GET /health, the same error shape and the same `/credit` fault injection), but:
balances live in one dict, the `transaction-id` header is checked and then forgotten (no record of
processed ids, so a retried request is applied again), and there is no compensate or void.

    python -m repository_before.server --port 8001

Fault injection reads the same variables as the real service: SAGABANK_CREDIT_FAILURE_RATE
(default 0.3), SAGABANK_CREDIT_FAILURE_MODE (`before`: answer 500 and change nothing; `after`:
apply the credit, then answer 500; `mixed`: either) and SAGABANK_FAULT_SEED.
"""

from __future__ import annotations

import argparse
import os
import random
import re
from typing import Annotated

import uvicorn
from fastapi import FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

FAULT_RATE = float(os.environ.get("SAGABANK_CREDIT_FAILURE_RATE", "0.3"))
FAULT_MODE = os.environ.get("SAGABANK_CREDIT_FAILURE_MODE", "before")
_seed = os.environ.get("SAGABANK_FAULT_SEED")
faults = random.Random(int(_seed) if _seed else None)

OPENING = {f"acc-{i:02d}": 100_000 for i in range(1, 11)}
balances = dict(OPENING)
app = FastAPI(title="naive transfer service")


class OperationIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    account_id: StrictStr
    amount: Annotated[StrictInt, Field(ge=1, le=10**12)]


def error(status: int, code: str, message: str, **extra: object) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, **extra}, status_code=status)


@app.exception_handler(RequestValidationError)
async def invalid_request(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    return error(422, "invalid_request", "the request is invalid", details=details)


def apply(operation: str, tx_id: str | None, body: OperationIn, sign: int) -> JSONResponse:
    # The header is validated like the real service does, then forgotten: nothing is recorded.
    if tx_id is None or not re.fullmatch(r"[A-Za-z0-9._:\-]{1,128}", tx_id):
        return error(422, "invalid_transaction_id", "header 'transaction-id' is invalid")
    if body.account_id not in balances:
        return error(404, "account_not_found", f"account {body.account_id!r} does not exist")
    if sign < 0 and balances[body.account_id] < body.amount:
        return error(409, "insufficient_funds", f"account {body.account_id!r} is short")
    balances[body.account_id] += sign * body.amount
    return JSONResponse(
        {
            "transaction_id": tx_id,
            "operation": operation,
            "account_id": body.account_id,
            "amount": body.amount,
            "balance_after": balances[body.account_id],
            "status": "applied",
        }
    )


def random_point() -> str:
    return "before" if faults.random() < 0.5 else "after"


TxHeader = Annotated[str | None, Header(alias="transaction-id")]


@app.post("/debit")
async def debit(body: OperationIn, tx_id: TxHeader = None) -> JSONResponse:
    return apply("debit", tx_id, body, -1)


@app.post("/credit")
async def credit(body: OperationIn, tx_id: TxHeader = None) -> JSONResponse:
    point = None
    if FAULT_RATE > 0 and faults.random() < FAULT_RATE:
        point = FAULT_MODE if FAULT_MODE != "mixed" else random_point()
    if point == "before":
        return error(500, "injected_fault", "injected fault before the credit")
    response = apply("credit", tx_id, body, +1)
    if point == "after":  # the credit happened, and the caller is told it failed
        return error(500, "injected_fault", "injected fault after the credit")
    return response


@app.get("/accounts")
async def list_accounts() -> dict[str, object]:
    rows = [
        {"account_id": a, "balance": balances[a], "opening_balance": OPENING[a]}
        for a in sorted(balances)
    ]
    return {"accounts": rows, "total": sum(balances.values())}


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="the naive account service")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
