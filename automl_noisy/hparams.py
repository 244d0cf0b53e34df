"""Hyperparameter declarations: what a component may be tuned over, in plain Python.

Components declare their hyperparameters with these classes; the search turns them into Optuna
distributions (``automl_noisy.search.space``), so components never import Optuna. A space file
may only *narrow* a declaration (``narrow``), never widen it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from automl_noisy.errors import UserError


@dataclass(frozen=True)
class Float:
    """A real number in ``[low, high]``; ``log`` samples on a log scale."""

    default: float
    low: float
    high: float
    log: bool = False

    def check(self, name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise UserError(f"{name} must be a number, got {value!r}")
        if not self.low <= value <= self.high:
            raise UserError(f"{name}={value} is outside its range [{self.low}, {self.high}]")
        return float(value)

    def narrow(self, name: str, override: Any) -> "Float":
        low, high = _bounds(name, override, self.low, self.high)
        return replace(self, low=float(low), high=float(high), default=min(max(self.default, low), high))

    def describe(self) -> str:
        return f"float [{self.low:g}, {self.high:g}]{' log' if self.log else ''}, default {self.default:g}"


@dataclass(frozen=True)
class Int:
    """An integer in ``[low, high]``; ``log`` samples on a log scale."""

    default: int
    low: int
    high: int
    log: bool = False

    def check(self, name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            raise UserError(f"{name} must be an integer, got {value!r}")
        if not self.low <= value <= self.high:
            raise UserError(f"{name}={value} is outside its range [{self.low}, {self.high}]")
        return int(value)

    def narrow(self, name: str, override: Any) -> "Int":
        low, high = _bounds(name, override, self.low, self.high)
        if int(low) != low or int(high) != high:
            raise UserError(f"{name} takes integer bounds, got [{low}, {high}]")
        low, high = int(low), int(high)
        return replace(self, low=low, high=high, default=min(max(self.default, low), high))

    def describe(self) -> str:
        return f"int [{self.low}, {self.high}]{' log' if self.log else ''}, default {self.default}"


@dataclass(frozen=True)
class Choice:
    """One of a fixed tuple of values (strings, numbers or booleans)."""

    default: Any
    choices: tuple[Any, ...]

    def check(self, name: str, value: Any) -> Any:
        if value not in self.choices:
            raise UserError(f"{name}={value!r} is not one of {list(self.choices)}")
        return value

    def narrow(self, name: str, override: Any) -> "Choice":
        values = tuple(override) if isinstance(override, (list, tuple)) else (override,)
        for value in values:
            self.check(name, value)
        default = self.default if self.default in values else values[0]
        return replace(self, choices=values, default=default)

    def describe(self) -> str:
        return f"one of {list(self.choices)}, default {self.default!r}"


HParam = Float | Int | Choice


def fixed_value(param: HParam) -> tuple[bool, Any]:
    """``(True, value)`` when a (narrowed) declaration leaves a single value, else ``(False, None)``."""
    if isinstance(param, Choice):
        return (True, param.choices[0]) if len(param.choices) == 1 else (False, None)
    return (True, param.low) if param.low == param.high else (False, None)


def _bounds(name: str, override: Any, low: float, high: float) -> tuple[float, float]:
    """Read a narrowing override: a number (fixed), ``[low, high]`` or ``{low: .., high: ..}``."""
    if isinstance(override, bool):
        raise UserError(f"{name}: expected a number or a range, got {override!r}")
    if isinstance(override, (int, float)):
        new_low = new_high = override
    elif isinstance(override, (list, tuple)) and len(override) == 2:
        new_low, new_high = override
    elif isinstance(override, dict) and set(override) <= {"low", "high"}:
        new_low, new_high = override.get("low", low), override.get("high", high)
    else:
        raise UserError(f"{name}: expected a number, [low, high] or {{low: .., high: ..}}, got {override!r}")
    for bound in (new_low, new_high):
        if isinstance(bound, bool) or not isinstance(bound, (int, float)):
            raise UserError(f"{name}: range bounds must be numbers, got {bound!r}")
    if not low <= new_low <= new_high <= high:
        raise UserError(f"{name}: range [{new_low}, {new_high}] must lie inside [{low}, {high}]")
    return new_low, new_high
