"""Imports every layer family once so that each registers its declarations."""

from engine.layers import activation, conv, dense, heads, inputs, merge, norm, pool  # noqa: F401
