"""Package logging: one logger, every line passed through the secret masker and made inert as a CI
workflow command."""

from __future__ import annotations

import logging
import sys

from sc_ci import sanitize, secrets

LOGGER_NAME = "sc_ci"


class MaskingFilter(logging.Filter):
    """Masks registered secrets in the fully formatted message before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = sanitize.neutralize(secrets.mask(message))  # no line can be a workflow command
        if masked != message or record.args:
            record.msg = masked
            record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = secrets.mask(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def get_logger(name: str = "") -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME)


def setup(verbosity: int = 0, stream: object = None) -> None:
    """Configure the package logger once (CLI only). verbosity: 0 info, 1+ debug; -1 warnings only."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.addFilter(MaskingFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    level = logging.DEBUG if verbosity > 0 else logging.WARNING if verbosity < 0 else logging.INFO
    logger.setLevel(level)
    logger.propagate = False
