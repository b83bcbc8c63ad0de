"""`-v/--verbose` and ``KIT_LOG``: the kit's log records on stderr, with secrets redacted.

``-v`` shows what the kit is doing (info), ``-vv`` every HTTP exchange with a target (debug:
method, URL, status, time, JSON bodies cut short); ``KIT_LOG=debug|info|warning|error`` sets the
same from the environment (the larger of the two wins). Every record passes through one
``Scrubber`` holding the values of the environment variables that look like credentials
(``*KEY*``, ``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``) and the project's secret variables, and
``Authorization`` values and bearer tokens are masked wherever they appear.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping

from assistant_kit.errors import ConfigError
from assistant_kit.testing.secrets import Scrubber, secret_env_names

__all__ = ["KIT_LOG", "level_for", "setup_logging"]

#: The environment variable that sets the log level of any `kit` command.
KIT_LOG = "KIT_LOG"

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
#: Variable names whose values are treated as secrets in log records.
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
#: Loggers whose records `-v` shows (`kit serve` hands its own to uvicorn's log level).
_LOGGERS = ("assistant_kit",)


def level_for(verbosity: int, environ: Mapping[str, str]) -> int | None:
    """The log level asked for by ``-v`` (count) and ``KIT_LOG``, or None for "no logging"."""
    levels = []
    if verbosity >= 2:
        levels.append(logging.DEBUG)
    elif verbosity == 1:
        levels.append(logging.INFO)
    name = environ.get(KIT_LOG, "").strip().lower()
    if name:
        if name not in _LEVELS:
            raise ConfigError(
                f"{KIT_LOG}={name!r} is not a log level; use one of {', '.join(_LEVELS)}"
            )
        levels.append(_LEVELS[name])
    return min(levels) if levels else None


class _Redact(logging.Filter):
    """Formats each record's message once, scrubbed (arguments included)."""

    def __init__(self, scrubber: Scrubber) -> None:
        super().__init__()
        self.scrubber = scrubber

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.scrubber.text(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.scrubber.text(record.exc_text)
        return True


class _StderrHandler(logging.Handler):
    """Writes to ``sys.stderr`` as it is at each record (live progress redirects it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # logging must never break a command
            self.handleError(record)


_HANDLER_NAME = "kit-cli"


def setup_logging(
    verbosity: int, environ: Mapping[str, str] | None = None, extra_secrets: Iterable[str] = ()
) -> int | None:
    """Send the kit's log records at the asked level to stderr; returns the level (None: off)."""
    env = os.environ if environ is None else environ
    level = level_for(verbosity, env)
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        for handler in [h for h in logger.handlers if h.get_name() == _HANDLER_NAME]:
            logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
        logger.propagate = True
    if level is None:
        return None
    names = {n for n in env if _SECRET_NAME.search(n)} | secret_env_names({}) | set(extra_secrets)
    handler = _StderrHandler()
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(_Redact(Scrubber.from_env(names, env)))
    handler.setFormatter(logging.Formatter("%(levelname)-7s %(name)s: %(message)s"))
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
    return level
