"""Batches: many files scanned as one unit, fanned out into chunk jobs, counted exactly, streamed
as events and closed by one report job. ``state`` keeps the shared counters and events, ``runs``
is what a worker does with a chunk or report job, ``links`` signs download links."""
