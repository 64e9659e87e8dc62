"""Errors raised by the OCI spec generator and converters."""

from __future__ import annotations

__all__ = ["SpecError"]


class SpecError(ValueError):
    """Invalid OCI spec content or an adjustment that cannot be applied to a spec.

    ``field`` names the offending spec or adjustment field as a dotted path
    (for example ``linux.devices[2].path`` or ``adjustment.rlimits[0].type``).
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.reason = message
        super().__init__(f"{field}: {message}")
