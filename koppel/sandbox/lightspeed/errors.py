"""The one exception the emulated API raises; rendered as Lightspeed's error envelope."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An API error: ``{"error": {"code", "method", "request", "message", "errors"?}}``."""

    def __init__(self, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.errors = errors


def not_found() -> ApiError:
    return ApiError(404, "Not found.")


def invalid(errors: dict[str, list[str]]) -> ApiError:
    return ApiError(422, "Validation failed.", errors)
