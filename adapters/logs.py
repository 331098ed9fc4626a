"""Every medialane process's logging: one line a record, as JSON or plain text, with secrets taken out.

``MEDIALANE_LOG_FORMAT`` picks the format. A record's ``extra`` fields (job_id, op, key_id...) are keys of
the JSON object, or ``name=value`` pairs after a text line's message, so ``grep JOB_ID`` finds a job's
lines in either format.

Redaction happens here, on the finished line, whoever logged it: a line that reached the log is one a
reader may replay, so an API key, a webhook secret, a credential query value or a download link's token
never reaches it, however a URL or a header came to be in a message or a traceback.
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "REDACTED"
# Query parameters that carry a credential: ours (key), the references' and presigned S3 URLs'.
SECRET_PARAMS = frozenset({
    "key", "api_key", "apikey", "token", "access_token", "signature", "sig", "x-amz-signature",
    "x-amz-credential", "x-amz-security-token", "awsaccesskeyid",
})  # fmt: skip
# What a finished line may still hold: a raw API key or webhook secret (adapters/apikeys.py makes both),
# a bearer token, a credential query value, and a download link's token (adapters/links.py).
SECRETS = (
    (re.compile(r"\b(?:ml|whsec)_[A-Za-z0-9_-]{8,}"), REDACTED),
    (re.compile(r"(?i)\b(bearer\s+)[^\s\"'\\,]+"), rf"\g<1>{REDACTED}"),
    (re.compile(rf"(?i)([?&;](?:{'|'.join(map(re.escape, SECRET_PARAMS))})=)[^&\s\"'\\#]+"), rf"\g<1>{REDACTED}"),
    (re.compile(r"(/v1/downloads/)[A-Za-z0-9_=-]+\.[A-Za-z0-9_=-]+"), rf"\g<1>{REDACTED}"),
)
# What every LogRecord has: any other attribute came from ``extra`` and is one of the line's fields.
STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
FORMATS = ("json", "text")


def redact_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(name, REDACTED if name.lower() in SECRET_PARAMS else value) for name, value in pairs], safe="[]")


def redact_url(url: str) -> str:
    """``url`` (absolute, or a path with its query) with every credential query value replaced."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=redact_query(parts.query))) if parts.query else url


def scrub(line: str) -> str:
    for pattern, replacement in SECRETS:
        line = pattern.sub(replacement, line)
    return line


def fields(record: logging.LogRecord) -> dict[str, Any]:
    return {name: value for name, value in vars(record).items() if name not in STANDARD_ATTRIBUTES}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the record's extra fields, the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **fields(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return scrub(json.dumps(line, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = " ".join(f"{name}={value}" for name, value in fields(record).items() if value is not None)
        if extra:
            head, newline, rest = line.partition("\n")
            line = f"{head} {extra}{newline}{rest}"
        return scrub(line)


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


def logging_config(log_format: str, level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dictionary: every record at ``level`` or above to stderr, formatted."""
    return {
        "version": 1,
        # Loggers made at import time (courier, Faust, aiohttp) keep logging.
        "disable_existing_loggers": False,
        "formatters": {"medialane": {"()": formatter, "log_format": log_format}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "medialane", "stream": "ext://sys.stderr"}},
        "root": {"level": level, "handlers": ["stderr"]},
    }


def configure(log_format: str, level: str = "INFO") -> None:
    logging.config.dictConfig(logging_config(log_format, level))
