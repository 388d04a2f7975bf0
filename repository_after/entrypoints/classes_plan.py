"""The classes demo's school: its classes and their capacities, its pupils, and a seeded plan of
group assignments.

Pure (no I/O): `plan_classes(seed, n, run_id)` is the same school and plan for the same
arguments. The figures are chosen so that every outcome is met in a run of a few dozen: groups
of 1-5 pupils drawn from a pool of about two pupils per request, so many groups name a pupil an
earlier group already took (the pupil step refuses: `pupil_assigned`); classes of 4-10 places,
one class per eight requests (at least three), so their places run out long before the requests
do (the roster step refuses: `class_full`, and the pupils are unassigned). Ids carry the seed and
`run_id`, so a second run on the same books starts a new school.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

MIN_CLASSES = 3
REQUESTS_PER_CLASS = 8
CAPACITY = (4, 10)
GROUP = (1, 5)
PUPILS_PER_REQUEST = 2


@dataclass(frozen=True, slots=True)
class PlannedGroup:
    saga_id: str
    class_id: str
    pupils: tuple[str, ...]  # distinct

    def params(self) -> dict[str, object]:
        return {"class_id": self.class_id, "pupils": list(self.pupils)}


@dataclass(frozen=True, slots=True)
class School:
    classes: dict[str, int]  # class id -> its capacity
    pupils: tuple[str, ...]
    groups: tuple[PlannedGroup, ...]


def plan_classes(seed: int, n: int, run_id: str) -> School:
    rng = random.Random(f"classes-plan:{seed}")
    prefix = f"{run_id}-{seed}"
    count = max(MIN_CLASSES, n // REQUESTS_PER_CLASS)
    classes = {f"c-{prefix}-{i:03d}": rng.randint(*CAPACITY) for i in range(count)}
    pupils = tuple(f"p-{prefix}-{i:05d}" for i in range(max(GROUP[1], n * PUPILS_PER_REQUEST)))
    groups = tuple(
        PlannedGroup(
            saga_id=f"cls-{prefix}-{index:05d}",
            class_id=rng.choice(tuple(classes)),
            pupils=tuple(rng.sample(pupils, rng.randint(*GROUP))),
        )
        for index in range(n)
    )
    return School(classes, pupils, groups)
