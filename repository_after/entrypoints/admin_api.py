"""Admin endpoints of the account service: read and change fault injection at run time.

Changing faults needs the admin bearer token when one is configured (like opening accounts).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt

from repository_after.entrypoints.deps import Admin, FaultsDep, Reader
from repository_after.service_layer.faults import FaultInjector, FaultMode

router = APIRouter(prefix="/admin", tags=["admin"])


class FaultsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rate: Annotated[StrictFloat | StrictInt, Field(ge=0, le=1)]
    mode: FaultMode = FaultMode.BEFORE
    seed: StrictInt | None = None


class InjectedOut(BaseModel):
    before: int
    after: int


class FaultsOut(BaseModel):
    rate: float
    mode: FaultMode
    seed: int | None
    injected: InjectedOut


def _view(faults: FaultInjector) -> FaultsOut:
    return FaultsOut(
        rate=faults.rate,
        mode=faults.mode,
        seed=faults.seed,
        injected=InjectedOut(before=faults.counts.before, after=faults.counts.after),
    )


@router.get("/faults", response_model=FaultsOut, dependencies=[Reader])
async def get_faults(faults: FaultsDep) -> FaultsOut:
    return _view(faults)


@router.put(
    "/faults",
    response_model=FaultsOut,
    dependencies=[Admin],
)
async def put_faults(faults: FaultsDep, body: FaultsIn) -> FaultsOut:
    faults.configure(rate=float(body.rate), mode=body.mode, seed=body.seed)
    return _view(faults)
