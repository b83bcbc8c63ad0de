"""OpenAI's Responses API on the run machinery: request mapping, rendering, event streams.

The routes are ``routes/responses.py``; ``request.py`` maps a request onto a run,
``render.py`` renders runs as responses, ``stream.py`` turns a run's event log into the
Responses event stream.

**A response is a run on a thread.** ``POST /v1/responses`` turns its ``input`` into thread
messages and starts a run with the request's settings, through the same ``RunEngine`` and model
routing as an Assistants run; the response's id is the run's (``resp_<uuid>`` = ``run_<uuid>``),
its output items are the run's steps (a ``message_creation`` step is a ``message`` item, a
``tool_calls`` step one ``function_call`` item per call). The thread is:

- a new one for a response without ``previous_response_id``;
- the previous response's thread with ``previous_response_id`` (so a chain is one thread, and
  ``threads.messages.list`` shows it); ``function_call_output`` items answer the previous
  response's pending calls (its run leaves ``requires_action`` as ``completed``, the outputs in
  its tool step, which the model reads as history). A chain is linear: answering one response
  twice adds both turns to the same thread.

A ``responses`` row (``store/records.py``) keeps what only this surface knows: ``store`` (an
unstored response chains but is not retrievable), the chain, the input message ids and the
request fields only it renders. A response whose run ends waiting for tool outputs shows as
``completed`` with ``function_call`` items, as OpenAI's does.
"""
