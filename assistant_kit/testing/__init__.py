"""Conversation tests (``kit test``): everything but the runner that talks to a target.

Modules, bottom up (import from the defining module; this package imports nothing eagerly, so
the pytest plugin stays cheap to load):

* ``records``      frozen records: ToolCallRecord, TurnRecord, CheckResult, TurnResult,
                   RepetitionResult, TestResult, SuiteResult, Verdict, CheckStatus
* ``matchers``     argument matching shared by ``tool_called`` and mock ``when`` cases
* ``assertions``   ``build_check(s)`` / ``build_expectation`` / ``evaluate_turn``; the checks live
                   in ``checks`` (reply, limits, not), ``tool_checks`` and ``judge`` (judge, python)
* ``mocks``        ``MockSession.resolve(name, args, turn=, turn_mocks=)`` -> MockAnswer | MockMiss
* ``verdicts``     repetition and k-of-n test verdicts, flaky, skip, exit status
* ``selection``    ``-k`` expressions, ``--tag``, ``--shard i/n``
* ``secrets``      ``Scrubber``: secret values and Authorization credentials out of every output
* ``report``       text summary, JUnit XML, JSON; ``html_report``: one self-contained HTML file
* ``cassettes``    record / replay as httpx transports, keyed by test id + spec digest + turn
"""
