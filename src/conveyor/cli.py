"""The ``conveyor`` command. Each command parses its options, calls one use case and maps errors to
exit codes (0 ok, 1 failure, 2 bad input) in one place, ``_exit_code``."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from conveyor import logs
from conveyor.content import DocumentInput, Limits, OfflineContext
from conveyor.errors import ConveyorError, InputError
from conveyor.settings import Settings

if TYPE_CHECKING:
    from conveyor.ai import LanguageModel

app = typer.Typer(help="Conveyor: document intake and extraction.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Data folder (default ./conveyor-data).")]


def _settings(data_dir: Path | None = None) -> Settings:
    settings = Settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    logs.configure(settings.log_level, settings.log_format)
    return settings


def _exit_code(error: BaseException) -> int:
    return 2 if isinstance(error, InputError) else 1


@contextlib.contextmanager
def _errors_to_exit() -> Iterator[None]:
    try:
        yield
    except ConveyorError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(_exit_code(error)) from None


@contextlib.contextmanager
def _database(settings: Settings) -> Iterator[Any]:
    from conveyor.store import migrate
    from conveyor.store.database import create_database_engine, session_factory

    engine = create_database_engine(settings.resolved_database_url)
    migrate.upgrade(engine)
    try:
        yield session_factory(engine)
    finally:
        engine.dispose()


def _start_sources(settings: Settings, sessions: Any, specs: list[str]) -> list[Any]:
    """One polling thread per ``--watch`` spec; each hands new files to the intake use case."""
    from functools import partial

    from conveyor import intake, sources
    from conveyor.store.blobs import S3BlobStore, blob_store_for

    blobs = blob_store_for(settings)

    submit = partial(intake.submit_from_source, blobs=blobs)
    pollers = []
    for spec in specs:
        location, pipeline = sources.parse_watch(spec)
        source: sources.WatchedFolder | sources.S3Prefix
        if location.startswith("s3://"):
            bucket, _, prefix = location.removeprefix("s3://").partition("/")
            reader = blob_store_for(settings, f"s3://{bucket}")
            assert isinstance(reader, S3BlobStore)

            def list_objects(_bucket: str, prefix: str, reader: S3BlobStore = reader) -> list[Any]:
                return list(reader.list_prefix(prefix))

            source = sources.S3Prefix(
                bucket=bucket,
                prefix=prefix,
                pipeline=pipeline,
                sessions=sessions,
                submit=submit,
                list_objects=list_objects,
                open_object=reader.open_object,
            )
            interval = settings.s3_poll_seconds
        else:
            folder = Path(location)
            if not folder.is_dir():
                raise InputError(f"--watch {spec}: {folder} is not a folder")
            source = sources.WatchedFolder(folder, pipeline, sessions, submit)
            interval = settings.watch_poll_seconds
        poller = sources.Poller(source, interval)
        poller.start()
        pollers.append(poller)
        typer.echo(f"watching {source.source} for pipeline {pipeline}")
    return pollers


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Embedded worker processes (0: API only).")] = 2,
    data_dir: DataDir = None,
    watch: Annotated[
        list[str] | None,
        typer.Option(help="DIR=PIPELINE or s3://bucket/prefix=PIPELINE; repeatable."),
    ] = None,
) -> None:
    """Run the API, web UI and N worker processes (the embedded default)."""
    import uvicorn

    from conveyor import intake
    from conveyor.web.app import create_app
    from conveyor.worker import running_pool

    settings = _settings(data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with _errors_to_exit(), _database(settings) as sessions:
        with sessions.begin() as session:
            admin_key = intake.ensure_admin_key(session)
        if admin_key:
            typer.echo("Created the first admin API key (shown once, keep it safe):")
            typer.echo(admin_key)
        pollers = _start_sources(settings, sessions, watch or [])
    # uvicorn re-raises SIGTERM once it has shut down; exit through Python instead of dying on it,
    # so that the worker pool below is stopped (its jobs finished or handed back), never orphaned.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    with running_pool(settings, workers):
        try:
            uvicorn.run(create_app(settings), host=host, port=port, log_level="warning", access_log=False)
        finally:
            for poller in pollers:
                poller.stopped.set()


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Worker processes.")] = 2,
    data_dir: DataDir = None,
) -> None:
    """Run worker processes only (scale-out); SIGTERM finishes or hands back the current job."""
    import threading

    from conveyor.worker import running_pool

    settings = _settings(data_dir)
    with _errors_to_exit(), _database(settings):
        pass
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with running_pool(settings, concurrency):
        stop.wait()


def _parse_params(values: list[str]) -> dict[str, Any]:
    """``k=v`` pairs; a value that parses as JSON is taken as JSON (numbers, booleans, objects)."""
    params: dict[str, Any] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--param expects key=value, got {item!r}")
        try:
            params[key] = orjson.loads(value)
        except orjson.JSONDecodeError:
            params[key] = value
    return params


def extract_one(
    document: DocumentInput,
    pipeline_name: str,
    params: dict[str, Any],
    limits: Limits | None = None,
    language_model: LanguageModel | None = None,
) -> dict[str, Any]:
    """Run a pipeline on one file in this process; the DESIGN §4b result object."""
    from conveyor.pipelines import get_pipeline, run_pipeline

    pipeline = get_pipeline(pipeline_name)
    context = OfflineContext(limits, language_model)
    result = run_pipeline(pipeline, document, pipeline.validate_params(params), context)
    records = [record.as_json() for record in result.records]
    return {
        "pipeline": pipeline_name,
        "document": document.describe(),
        "records": records,
        "findings": [finding.as_json() for finding in result.findings],
        "review": {"required": result.review.required, "reasons": result.review.reasons},
        "summary": result.summary,
    }


@app.command()
def extract(
    files: Annotated[list[Path], typer.Argument(help="Files to process.")],
    pipeline: Annotated[str, typer.Option(help="Pipeline name.")],
    param: Annotated[list[str] | None, typer.Option(help="Pipeline parameter k=v.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print results as JSON.")] = False,
) -> None:
    """Run a pipeline in-process on local files, no server needed."""
    from conveyor.extractors.spooling import local_document
    from conveyor.worker import configured_model

    settings = _settings()
    limits = Limits(**settings.limit_values())
    failed = False
    try:
        params = _parse_params(param or [])
        model = configured_model(settings)
    except (InputError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    for path in files:
        described: dict[str, object] = {"filename": path.name}
        try:
            document = local_document(path)
            described = document.describe()
            output = extract_one(document, pipeline, params, limits, model)
        except (ConveyorError, OSError) as error:
            failed = True
            code = error.code if isinstance(error, ConveyorError) else "io_error"
            message = str(error) if isinstance(error, ConveyorError) else f"{path}: {error.strerror or error}"
            typer.echo(f"error: {message}", err=True)
            output = {"document": described, "error": {"code": code, "message": message}}
        except Exception as error:  # a bug in a pipeline must not hide the other files' results
            failed = True
            message = f"{path.name}: internal error ({type(error).__name__}: {error})"
            typer.echo(f"error: {message}", err=True)
            output = {"document": described, "error": {"code": "internal_error", "message": message}}
        if as_json:
            sys.stdout.buffer.write(orjson.dumps(output, option=orjson.OPT_NON_STR_KEYS) + b"\n")
        elif "error" not in output:
            typer.echo(
                f"{path.name}: {len(output['records'])} records, "
                f"{len(output['findings'])} findings, summary {output['summary']}"
            )
    sys.stdout.flush()
    if failed:
        raise typer.Exit(2)


@app.command()
def submit(
    files: Annotated[list[Path], typer.Argument(help="Files to upload.")],
    pipeline: Annotated[str, typer.Option(help="Pipeline name.")],
    server: Annotated[str, typer.Option(help="Conveyor server URL.")] = "http://127.0.0.1:8000",
    key: Annotated[
        str | None, typer.Option(envvar="CONVEYOR_API_KEY", help="API key (or CONVEYOR_API_KEY).")
    ] = None,
    param: Annotated[list[str] | None, typer.Option(help="Pipeline parameter k=v.")] = None,
    priority: Annotated[int, typer.Option(help="1 (most urgent) to 4.")] = 3,
    wait: Annotated[bool, typer.Option(help="Wait for the jobs to finish.")] = False,
) -> None:
    """Upload files to a running server and optionally wait, with a progress bar."""
    import httpx
    from rich.progress import Progress

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    params = orjson.dumps(_parse_params(param or [])).decode()
    job_ids: list[int] = []
    with httpx.Client(base_url=server, headers=headers, timeout=300) as client:
        for path in files:
            with path.open("rb") as stream:
                response = client.post(
                    "/api/upload",
                    files={"file": (path.name, stream)},
                    data={"pipeline": pipeline, "priority": str(priority), "params": params},
                )
            if response.status_code >= 400:
                typer.echo(f"error: {path}: {response.text}", err=True)
                raise typer.Exit(2 if response.status_code < 500 else 1)
            for job in response.json()["jobs"]:
                job_ids.append(job["id"])
                typer.echo(f"{path.name}: job {job['id']} {job['status']}")
        if not wait:
            return
        final: dict[int, dict[str, Any]] = {}
        with Progress(transient=True) as bar:
            task = bar.add_task("processing", total=len(job_ids))
            while len(final) < len(job_ids):
                for job_id in job_ids:
                    if job_id in final:
                        continue
                    job = client.get(f"/api/jobs/{job_id}").json()
                    if job["status"] in ("succeeded", "failed", "cancelled"):
                        final[job_id] = job
                        bar.advance(task)
                time.sleep(0.3)
    for job_id, job in final.items():
        detail = job["error"] or job["summary"]
        typer.echo(f"job {job_id}: {job['status']} {detail}")
    if any(job["status"] != "succeeded" for job in final.values()):
        raise typer.Exit(1)


@app.command()
def scan(
    path: Annotated[Path, typer.Argument(help="A folder or a zip of PDFs.")],
    pattern: Annotated[str | None, typer.Option(help="A regular expression for the codes.")] = None,
    targets: Annotated[Path | None, typer.Option(help="An xlsx/xls/csv list of codes to look for.")] = None,
    target_column: Annotated[str | None, typer.Option(help="The targets' column: header or letter.")] = None,
    report: Annotated[Path | None, typer.Option(help="Write the xlsx report here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary and matches as JSON.")] = False,
    ocr: Annotated[bool, typer.Option(help="OCR pages without a text layer.")] = True,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 2,
    chunk_size: Annotated[int | None, typer.Option(help="Files per job.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Scan a folder or zip for codes as a batch, with live progress; no server needed."""
    from rich.console import Console

    from conveyor import scanning

    settings = _settings(data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    request = scanning.ScanRequest(path, pattern, targets, target_column, report, ocr, workers, chunk_size)
    console = Console(stderr=as_json)
    with _errors_to_exit(), _database(settings) as sessions:
        outcome = scanning.run_scan(settings, sessions, request, console)
    last = outcome.last_event
    if as_json:
        summary = {
            "batch": outcome.batch_id,
            "status": "completed" if last.get("type") == "COMPLETE" else last.get("code", "failed"),
            **{name: last.get(name) for name in ("total", "processed", "failed")},
            "match_count": last.get("matches"),
            "report": str(report) if report else None,
            "matches": outcome.matches,
            "failed_files": [
                {"file": error.get("file"), "message": error.get("message")}
                for error in outcome.errors
                if error.get("file")
            ],
        }
        sys.stdout.write(orjson.dumps(summary).decode() + "\n")
    else:
        console.print(
            f"batch {outcome.batch_id}: {last.get('processed')} scanned, {last.get('failed')} failed,"
            f" {last.get('matches')} matches" + (f"; report {report}" if report else "")
        )
    if last.get("type") != "COMPLETE":
        raise typer.Exit(1)


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="admin, reviewer, submitter or viewer.")],
    name: Annotated[str, typer.Option(help="A name to recognise the key by.")] = "cli",
    data_dir: DataDir = None,
) -> None:
    """Create an API key; it is printed once, alone on the last line."""
    from conveyor import intake

    settings = _settings(data_dir)
    with _errors_to_exit(), _database(settings) as sessions, sessions.begin() as session:
        api_key, plaintext = intake.create_api_key(session, role=role, name=name)
        typer.echo(f"created {role} key {api_key.prefix}... named {name!r}", err=True)
    typer.echo(plaintext)


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDir = None) -> None:
    """Apply schema migrations (safe to run from several processes at once)."""
    settings = _settings(data_dir)
    with _errors_to_exit(), _database(settings):
        typer.echo("database schema is up to date")


def _days(value: str) -> int:
    text = value.strip().lower().removesuffix("d")
    if not text.isdigit():
        raise InputError(f"--older-than expects a number of days such as 90d, got {value!r}")
    return int(text)


@app.command()
def cleanup(
    older_than: Annotated[
        str | None,
        typer.Option(help="e.g. 90d; default: each pipeline's retention.<pipeline> setting."),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Delete finished jobs past their retention, their records and unreferenced blobs."""
    from conveyor import intake
    from conveyor.store.blobs import blob_store_for

    settings = _settings(data_dir)
    with _errors_to_exit(), _database(settings) as sessions:
        days = _days(older_than) if older_than else None
        blobs = blob_store_for(settings)
        with sessions.begin() as session:
            counts = intake.cleanup(session, blobs, actor="cli", older_than_days=days)
    typer.echo(orjson.dumps(counts, default=str).decode())


def main() -> None:  # pragma: no cover - the console script
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()
