"""One module per wire dialect; each owns everything about its wire.

A ``Dialect`` (``base.py``) renders neutral records as its wire's JSON (assistant, thread, message,
run, step, tool call, deltas, file, list page, deleted marker), wraps them in its envelope and
headers, writes its ids and timestamps, reads its request-body quirks, and frames its event
streams. Route tables (``routes/``), ``events.py`` and ``endpoints.py`` only call its methods; no
module outside this package asks which dialect it holds. The dialect is chosen per mount:
``app.MOUNTS`` pairs a path with a dialect and the route tables it serves.

A new dialect is one file plus a mount. For the Responses API, say:

1. ``dialects/responses.py``::

       class Responses(Dialect):
           name = "responses"
           prefixes = {**Dialect.prefixes, "thread": "conv_"}

           def ts(self, ms): return None if ms is None else ms // 1000
           def ok(self, body, request_id, status=200): ...
           def error_body(self, exc, request_id): ...
           def assistant(self, a): ...      # and thread, message, file, message_delta,
           ...                              # code_interpreter_call, shows_builtin_type,
                                            # frame, error_frame (the abstract methods)
       RESPONSES = Responses()

   overriding whatever else its wire does differently (``run``, ``usage``, ``step_delta``...),
   and added to ``DIALECTS`` below. A new id prefix also goes in ``ids.ACCEPTED``, so that ids
   of one dialect work in the others (``tests/server/test_ids.py`` checks every dialect's).
2. a mount in ``app.MOUNTS``: ``DialectMount("/responses/v1", RESPONSES, (...))`` with the route
   tables it serves: the shared ones (``routes/crud.py``, ``runs.py``, ``files.py``), and a
   ``routes/`` module of its own for resources only it has.
"""

from assistant_kit.server.dialects.base import Dialect
from assistant_kit.server.dialects.dashscope import DashScope
from assistant_kit.server.dialects.openai import OpenAI

DASHSCOPE = DashScope()
OPENAI = OpenAI()

#: Every dialect the server speaks.
DIALECTS: tuple[Dialect, ...] = (OPENAI, DASHSCOPE)

__all__ = ["DASHSCOPE", "DIALECTS", "OPENAI", "DashScope", "Dialect", "OpenAI"]
