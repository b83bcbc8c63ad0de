"""Runs: the engine (state machine, claims, reaper, sweeper), one model call of a run, the
thread history a call reads and the transcript it builds from it."""
