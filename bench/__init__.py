"""Conveyor's benchmarks: queue throughput, JSON ingestion and the upload API (``python -m bench``)."""
