"""sagabank as a library: sagas whose steps are Python callables, run in one process on the
service's own engine (durable log, write-ahead driver, retries, recovery). See docs/library.md.

    from repository_after.library import Refused, Saga, SagaRunner, StepContext

`Saga` defines (`definition.py`), `SagaRunner` runs, resumes and inspects (`runner.py`), a
`SagaView` is what it answers (`views.py`); `LocalParticipant` (`participant.py`) is the seam
between the engine and the callables.
"""

from repository_after.domain.saga import StepKind
from repository_after.library.definition import Refused, Saga, StepContext
from repository_after.library.runner import SagaRunner, open_log
from repository_after.library.views import SagaView, StepView
from repository_after.service_layer.retry import RetryPolicy
from repository_after.service_layer.saga_driver import SagaNotFound

__all__ = [
    "Refused",
    "RetryPolicy",
    "Saga",
    "SagaNotFound",
    "SagaRunner",
    "SagaView",
    "StepContext",
    "StepKind",
    "StepView",
    "open_log",
]
