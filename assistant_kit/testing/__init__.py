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

How the runner (``runner.py``, next) plugs these in, per test and per repetition::

    checks = [[build_expectation(e.kind, e.value, e.negate, where=f"{file}:{e.line}")
               for e in turn.expect] for turn in case.turns]        # spec model -> checks, once
    n, k = repeat_plan(case.repeat, case.min_pass)                  # RepeatError -> test ERROR
    mocks = MockSession(mocks_from_spec(case.mocks))                # fresh per repetition
    for i, turn in enumerate(case.turns):
        transport.at_turn(i)                                        # only with cassettes
        ... add the user message, stream the run; on requires_action, for each function call:
        record = ToolCallRecord.function(call_id, name, raw_arguments)
        record, miss = mocks.answer(record, turn=i, turn_mocks=mocks_from_spec(turn.mocks))
        ... on a miss: cancel the run, add miss_result(miss) to the turn's checks, stop the
            repetition after this turn (FAIL); else submit record.output for call_id
        built-in steps -> ToolCallRecord.builtin(step_id, type, arguments, output=...)
        turn_record = TurnRecord(i, user, reply, calls, usage, latency_ms, errors=(...timeout...))
        results = await evaluate_turn(checks[i], turn_record,
                                      CheckContext(history=previous_turns, judges=provider,
                                                   import_paths=(spec_dir, project_root)))
    rep = make_repetition(r, turn_results, duration_ms=..., error=setup_error, thread_id=tid)
    result = make_test_result(test_id, reps, repeat=n, min_pass=k, tags=..., file=..., line=...)
    # skip: skipped_test(test_id, case.skip); selection: select(..., keyword, tags, shard)
    # reports: render_text / write_reports(suite, junit=, json_path=, html=, scrubber=Scrubber(...))
"""
