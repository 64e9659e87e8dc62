"""Go's number formatting (``strconv.FormatFloat``, ``encoding/json``) in Python."""

from __future__ import annotations

import math
import struct
from decimal import Decimal


def _digits(value: float, bits: int) -> tuple[str, int]:
    """Shortest round-trip digits and decimal point position of a positive finite float."""
    if bits == 32:
        single = struct.unpack("f", struct.pack("f", value))[0]
        for precision in range(1, 10):
            text = f"{single:.{precision - 1}e}"
            if struct.unpack("f", struct.pack("f", float(text)))[0] == single:
                break
        value = float(text)
    exact = Decimal(repr(value)).normalize().as_tuple()
    digits = "".join(map(str, exact.digits))
    assert isinstance(exact.exponent, int)
    return digits, len(digits) + exact.exponent


def format_float(value: float, fmt: str, bits: int) -> str:
    """Go's ``strconv.FormatFloat(value, fmt, -1, bits)`` for *fmt* in ``e``, ``f``, ``g``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0:
        digits, point = "0", 1
    else:
        digits, point = _digits(abs(value), bits)
    if fmt == "g":
        exp = point - 1
        fmt = "e" if exp < -4 or exp >= 6 else "f"
    if fmt == "e":
        exp = point - 1 if value != 0 else 0
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"


def go_float_string(value: float) -> str:
    """A YAML float written into a string field by sigs.k8s.io/yaml (``%g`` of float32).

    >>> go_float_string(1.5), go_float_string(1e6), go_float_string(0.1), go_float_string(-math.inf)
    ('1.5', '1e+06', '0.1', '-Inf')
    """
    return format_float(value, "g", 32)


def json_literal(value: float) -> str:
    """The JSON text Go's encoder writes for a float64."""
    size = abs(value)
    if size != 0 and (size < 1e-6 or size >= 1e21):
        mantissa, _, exponent = format_float(value, "e", 64).partition("e")
        return f"{mantissa}e{exponent[0]}{int(exponent[1:])}"  # Go writes e-7, not e-07
    return format_float(value, "f", 64)
