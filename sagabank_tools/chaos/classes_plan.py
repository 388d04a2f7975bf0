"""The classes plan of a chaos run: the school to open and the group assignments, a pure function
of the seed.

One class of 2-6 places per `GROUPS_PER_CLASS` groups (at least `MIN_CLASSES`); a pool of three
pupils per group; each group 1-4 pupils of the pool for a random class. So groups collide on a
pupil (refused: `pupil_assigned`) and classes fill up (refused at the roster, then unassigned:
`class_full`) even in a short run. Saga id `chaos-<seed>-<n>` (as a transfer's), class
`c-<seed>-<i>`, pupil `p-<seed>-<i>`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

MIN_CLASSES = 6
GROUPS_PER_CLASS = 6
PUPILS_PER_GROUP = 3
CAPACITY = (2, 6)
GROUP = (1, 4)


@dataclass(frozen=True, slots=True)
class PlannedGroup:
    transaction_id: str
    class_id: str
    pupils: tuple[str, ...]  # distinct

    def body(self) -> dict[str, object]:
        return {"class_id": self.class_id, "pupils": list(self.pupils)}


@dataclass(frozen=True, slots=True)
class ClassPlan:
    classes: dict[str, int]  # class id -> capacity
    pupils: tuple[str, ...]
    groups: list[PlannedGroup]


def plan_classes(seed: int, groups: int) -> ClassPlan:
    rng = random.Random(f"classes-plan:{seed}")
    count = max(MIN_CLASSES, groups // GROUPS_PER_CLASS)
    classes = {f"c-{seed}-{i}": rng.randint(*CAPACITY) for i in range(count)}
    pupils = tuple(f"p-{seed}-{i:05d}" for i in range(max(GROUP[1], PUPILS_PER_GROUP * groups)))
    planned = [
        PlannedGroup(
            transaction_id=f"chaos-{seed}-{index:06d}",
            class_id=rng.choice(tuple(classes)),
            pupils=tuple(rng.sample(pupils, rng.randint(*GROUP))),
        )
        for index in range(groups)
    ]
    return ClassPlan(classes, pupils, planned)
