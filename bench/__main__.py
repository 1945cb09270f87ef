"""``python -m bench [--quick] [NAME ...]``: run the benchmarks, print tables, save JSON."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time

from bench import report

BUSY_LOAD = 1.0
BENCHES = {
    "queue": "bench.queue_throughput",
    "json": "bench.json_ingestion",
    "upload": "bench.upload_api",
    "pdf-text": "bench.document_text",
    "ocr": "bench.ocr_throughput",
    "qr": "bench.qr_decoding",
    "timecard": "bench.timecard_throughput",
    "codescan": "bench.codescan_batch",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="{" + ",".join(BENCHES) + "}", help="default: all")
    parser.add_argument("--quick", action="store_true", help="small sizes, one run each: a smoke test")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHES)}")
    missed = False
    for name in args.names or list(BENCHES):
        module = importlib.import_module(BENCHES[name])
        load_before = os.getloadavg()[0]
        started = time.monotonic()
        outcome: report.BenchReport = module.run(quick=args.quick)
        outcome.data["load_average_1min"] = {"before": load_before, "after": os.getloadavg()[0]}
        outcome.data["duration_s"] = time.monotonic() - started
        if load_before > BUSY_LOAD:
            outcome.notes.append(
                f"the machine was busy when this started (1-minute load {load_before:.1f} on"
                f" {os.cpu_count()} cores): figures are lower and noisier than on an idle machine"
            )
        report.show(outcome)
        report.save(outcome, quick=args.quick)
        missed |= any(target.met is False for target in outcome.targets)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
