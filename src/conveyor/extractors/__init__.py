"""Extractors: one module per format family turning file bytes into format-neutral content."""
