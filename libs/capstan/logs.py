"""structlog set-up shared by every daemon: one event per line, key=value on a terminal,
JSON under systemd (JOURNAL_STREAM is set) or when asked, so logs are greppable and
machine-readable without a per-daemon decision."""

from __future__ import annotations

import logging
import os
import sys
from typing import Literal

import structlog

LogFormat = Literal["auto", "console", "json"]


def configure(fmt: LogFormat = "auto", level: str = "info") -> None:
    if fmt == "auto":
        fmt = "json" if os.environ.get("JOURNAL_STREAM") or not sys.stderr.isatty() else "console"
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.processors.LogfmtRenderer(key_order=["timestamp", "level", "event"])
    )
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Libraries that use stdlib logging (grpc, asyncio) go to the same stream.
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr)
