"""Process-wide logging: one stderr handler (or, for the local shell, a file) whose output never contains a token.

Redaction happens on the fully formatted text (message, interpolated args, traceback, stack), so a token
that reaches a log call by any route — an f-string, a `%s` argument, an exception message, a local
variable shown in a traceback line — is masked before it is written.

Two formats (LOG_FORMAT): `text`, one line per record, and `json`, one JSON object per line for log shippers
(`time`, `level`, `logger`, `message`, `exception`/`stack` when present, plus the record's `extra` fields). JSON
goes through the same `redact`, on every string value, extras included, before it is serialised.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import TextIO, TypeAlias

from bot.config_values import LogFormat
from bot.redaction import redact_for_logs, redact_value

ExcInfo: TypeAlias = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Libraries that log every request (and, at DEBUG, headers and payloads). At INFO they drown the bot's
# own lines; at DEBUG they are let through because the formatter still masks what they print.
NOISY_LOGGERS = ("httpx", "httpcore", "slack_bolt", "slack_sdk", "urllib3", "alembic")


class RedactingFormatter(logging.Formatter):
    """A `logging.Formatter` whose every output has been passed through `redact`."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_for_logs(super().format(record))

    # These two are overridden too because `logging.Formatter` caches the traceback text on the record
    # (`record.exc_text`): another handler formatting the same record later reuses it, masked.
    def formatException(self, ei: ExcInfo) -> str:
        return redact_for_logs(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return redact_for_logs(super().formatStack(stack_info))


# Attributes every LogRecord has; anything else on a record came from `extra={...}` and is shipped as a field.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(RedactingFormatter):
    """One JSON object per record, on one line, every string in it redacted."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            payload["exception"] = record.exc_text
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in payload and not key.startswith("_"):
                payload[key] = value
        # Non-JSON values (an exception, a path) become their text, redacted like the rest.
        dumped = json.dumps(
            redact_value(payload), default=lambda value: redact_for_logs(str(value)), ensure_ascii=False
        )
        return redact_for_logs(dumped)


def make_formatter(log_format: LogFormat = LogFormat.TEXT) -> RedactingFormatter:
    """The formatter for LOG_FORMAT: `json` or `text`."""
    return JsonFormatter() if log_format == LogFormat.JSON else RedactingFormatter(LOG_FORMAT)


class RedactingFilter(logging.Filter):
    """Masks a record in place so any handler it is attached to, whatever its formatter, writes no token.

    The message is interpolated with its args and redacted (args are then dropped), and the traceback and
    stack text are rendered and redacted into the fields formatters read them from.
    """

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: let the handler report it, but not with raw args
            message = f"{record.msg!s} (unformattable args)"
        record.msg = redact_for_logs(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_for_logs(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_for_logs(record.stack_info)
        return True


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever `sys.stderr` is at the time of the write (test runners and daemons swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass  # always follow sys.stderr


def _level_number(level: str) -> int:
    number = logging.getLevelNamesMapping().get(level.strip().upper())
    if number is None:
        raise ValueError(f"unknown log level {level!r}: expected DEBUG, INFO, WARNING or ERROR")
    return number


def configure_logging(level: str = "INFO", log_format: LogFormat = LogFormat.TEXT) -> None:
    """Send all logging to stderr through a `RedactingFormatter` (`JsonFormatter` for `json`). Calling it again
    changes the level and the format."""
    number = _level_number(level)
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        root.addHandler(handler)
    handler.setFormatter(make_formatter(log_format))
    # Handlers someone else installed (a process manager, a test harness) get the filter, so they do not
    # become the way round the redaction.
    for other in root.handlers:
        if other is not handler and not any(isinstance(f, RedactingFilter) for f in other.filters):
            other.addFilter(RedactingFilter())
    root.setLevel(number)
    if log_format == LogFormat.JSON:
        # Every line the process writes is then one JSON object: Python's warnings and a thread's uncaught
        # exception (which would print raw text) become log records too.
        logging.captureWarnings(True)
        threading.excepthook = _log_thread_exception
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if number <= logging.DEBUG else logging.WARNING)


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    thread = args.thread.name if args.thread is not None else "?"
    logging.getLogger("bot").error(
        "thread %s stopped: %s",
        thread,
        args.exc_type.__name__,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


def log_to_file(path: str) -> Callable[[], None]:
    """Send the process's log lines to the file at `path` instead of stderr, masked like the stderr ones.

    For the local shell, whose terminal is a conversation that log lines would interrupt. Returns the undo:
    the stderr handler comes back and the file is closed.
    """
    root = logging.getLogger()
    on_stderr = [h for h in root.handlers if isinstance(h, _StderrHandler)]
    to_file = logging.FileHandler(path, encoding="utf-8")
    to_file.setFormatter(RedactingFormatter(LOG_FORMAT))
    for handler in on_stderr:
        root.removeHandler(handler)
    root.addHandler(to_file)

    def undo() -> None:
        root.removeHandler(to_file)
        to_file.close()
        for handler in on_stderr:
            if handler not in root.handlers:
                root.addHandler(handler)

    return undo


def startup_failure(
    message: str, *, log_format: LogFormat = LogFormat.TEXT, level: str = "INFO", error: BaseException | None = None
) -> None:
    """Say, on stderr, in one line, why the process cannot start and what to do about it.

    `text`: `snapshot-bot: <message>`; `json`: one JSON object like every other line the process writes, with
    the traceback of `error` in `exception` only at LOG_LEVEL=DEBUG (a page of traceback helps nobody at 3 a.m.).
    Redacted either way: the message may quote a setting.
    """
    message = " ".join(message.split())  # one line, whatever the error text held
    if log_format == LogFormat.JSON:
        record = logging.LogRecord("bot", logging.ERROR, __file__, 0, message, None, None)
        if error is not None and level.strip().upper() == "DEBUG":
            record.exc_info = (type(error), error, error.__traceback__)
        line = JsonFormatter().format(record)
    else:
        line = redact_for_logs(f"snapshot-bot: {message}")
    print(line, file=sys.stderr, flush=True)
