"""Conveyor: durable document intake and extraction."""

__version__ = "0.1.0"
