"""Personal data never reaches a log or the activity log.

``scrub(text, known)`` replaces e-mail addresses, phone numbers and any of the record's
own personal values (names, streets, cities, companies…) in a message — typically an
API error such as QBO's "The name supplied already exists: <name>". ``pii_values``
collects those values from a source record by field name."""

from __future__ import annotations

import logging
import re
from typing import Any, Iterable

EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
# International (+31 6 1234 5678) and Dutch/Belgian/German national forms (06-12345678,
# 0612345678); not SKUs such as KLA-20417803 nor EAN codes.
PHONE = re.compile(r"(?<![\w.\-/])(?:\+\d[\d ()-]{7,16}\d|0\d{1,3}[ -]\d{6,8}|0[1-9]\d{8})(?![\w.])")
_PII_KEY = re.compile(
    r"(name|email|e_mail|street|phone|mobile|address|city|zip|postal|company|contact|"
    r"firstname|lastname|middlename|line1|line2|region)", re.IGNORECASE)
_MIN_VALUE_LEN = 3


def pii_values(data: Any, _key: str = "") -> set[str]:
    """String values held under personal-data keys anywhere in ``data``."""
    found: set[str] = set()
    if isinstance(data, dict):
        for key, value in data.items():
            found |= pii_values(value, str(key))
    elif isinstance(data, (list, tuple)):
        for value in data:
            found |= pii_values(value, _key)
    elif isinstance(data, str) and _key and _PII_KEY.search(_key):
        value = data.strip()
        if len(value) >= _MIN_VALUE_LEN and not value.isdigit():
            found.add(value)
    return found


def scrub(text: str | None, known: Iterable[str] = ()) -> str | None:
    if not text:
        return text
    for value in sorted(set(known), key=len, reverse=True):
        if value and value in text:
            text = text.replace(value, "<redacted>")
    text = EMAIL.sub("<email>", text)
    return PHONE.sub("<phone>", text)


class RedactPersonalData(logging.Filter):
    """A logging filter that scrubs e-mail addresses and phone numbers from messages."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler
            return True
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


# -- task logs -----------------------------------------------------------------------------
# Airflow 3's Task SDK writes task logs through structlog. Records of stdlib loggers (all
# of koppel's modules use ``logging.getLogger(__name__)``) reach structlog through the
# root logger's handler (a ``structlog.stdlib.ProcessorFormatter``), which Airflow
# re-creates whenever it (re)configures logging — a filter put on that handler would be
# lost. Two places survive instead:
#
# * a handler on the ``koppel`` logger: a record logged to ``koppel.x.y`` is handed to the
#   handlers of ``koppel.x.y``, ``koppel.x``, ``koppel`` and then the root logger, as
#   one and the same object, so a filter on a handler of ``koppel`` scrubs it in place
#   before Airflow's root handler renders it. Airflow's ``dictConfig`` does not name the
#   ``koppel`` logger and keeps existing loggers, so the handler stays.
# * a structlog processor just before the renderer, for events logged through structlog
#   directly: Airflow's own task-runner lines, ``self.log`` of hooks and operators, and
#   the traceback of a failed task (whose exception text may quote an API error); also
#   put in the root handlers' ProcessorFormatter chain for other libraries' records.
#   Airflow rebuilds these chains when it configures a task process's logging, so the
#   listener in ``koppel/log_redaction_listener.py`` re-installs it when a task starts.
#
# Secrets (tokens, client secrets, API keys) are Airflow's secret masker's job: the hooks
# ``mask_secret`` them, and connection passwords/sensitive extras are masked by Airflow.

_HANDLER_NAME = "koppel-redact-personal-data"


class _RedactingHandler(logging.Handler):
    """Emits nothing: its filter scrubs the record in place on its way to the root
    logger's handlers."""

    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.set_name(_HANDLER_NAME)
        self.addFilter(RedactPersonalData())

    def emit(self, record: logging.LogRecord) -> None:  # the filter did the work
        return None


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _scrub_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_value(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_scrub_value(v) for v in value)
    return value


def redact_personal_data(logger: Any, method_name: str, event_dict: dict) -> dict:
    """structlog processor: scrubs e-mail addresses and phone numbers from every string
    of the event, the rendered traceback included."""
    if event_dict.get("exc_info"):
        # render the traceback now (as the renderer would) so its text can be scrubbed
        import structlog

        event_dict = structlog.processors.format_exc_info(logger, method_name, event_dict)
    for key, value in list(event_dict.items()):
        if key != "exc_info":
            event_dict[key] = _scrub_value(value)
    return event_dict


def install_log_redaction() -> None:
    """Make koppel's task logs free of e-mail addresses and phone numbers. Idempotent and
    cheap: called when koppel is imported (a task process imports it when it parses its
    DAG file, after Airflow configured its logging) and safe to call again at any time,
    e.g. after something reconfigured logging."""
    koppel_logger = logging.getLogger("koppel")
    if not any(h.get_name() == _HANDLER_NAME for h in koppel_logger.handlers):
        koppel_logger.addHandler(_RedactingHandler())
    try:
        import structlog
    except ImportError:  # pragma: no cover - Airflow always brings structlog
        return
    chains = [structlog.get_config().get("processors")]
    # records of other libraries' stdlib loggers: the root handlers' ProcessorFormatter
    chains += [getattr(h.formatter, "processors", None) for h in logging.getLogger().handlers
               if isinstance(h.formatter, structlog.stdlib.ProcessorFormatter)]
    for processors in chains:
        if isinstance(processors, list) and redact_personal_data not in processors:
            # in place, before the renderer: loggers already bound (and cached) share
            # this very list
            processors.insert(max(len(processors) - 1, 0), redact_personal_data)
