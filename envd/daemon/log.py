"""The shape of the daemon's structured logger (structlog's bound logger).

Written down so the daemon's modules and the tests' fakes agree on it without
importing structlog, which only the running daemon configures.
"""

from __future__ import annotations

from typing import Protocol


class Logger(Protocol):
    def bind(self, **values: object) -> Logger: ...

    def debug(self, event: str, **values: object) -> object: ...

    def info(self, event: str, **values: object) -> object: ...

    def warning(self, event: str, **values: object) -> object: ...

    def error(self, event: str, **values: object) -> object: ...

    def exception(self, event: str, **values: object) -> object: ...
