"""Choreography: the saga definitions run without a coordinator, over the broker
(`repository_after.messaging`). docs/choreography.md describes the design.

- `course`: a saga's course as a message (definition key, parameters, history), its routing keys,
  message ids and the topology;
- `reactor`: a participant's reaction to a course message, in ONE local transaction with its
  inbox row, its turn's fence and the next message's outbox row;
- `stores`: the messaging tables, the account service's SQLite database as a messaging store,
  and each service's `decide` (the participant kit's rules);
- `tracker` and `scan`: the projection of every course message into the saga log, the
  time-outs, the dead letters, and the operator's retry and resolve;
- `log_outbox` and `launch`: `ChoreographedOrchestrator`, which starts a saga by writing its
  first message in the saga log's outbox, in the transaction that creates it;
- `runtime` and `wiring`: the relays, consumers and tracker loops of a
  `sagabank serve --mode choreography`, composed from `Settings`.
The pure fold is `domain.choreography`.
"""
