"""CONTRACT tests of the AI provider adapters (conveyor.ai), not model tests.

No request here reaches Anthropic, AWS or OpenAI: there is no network and there are no keys. Each
adapter talks to a real HTTP server on 127.0.0.1 that records the request and replays a response
from tests/contracts/*.json. Those recordings were written by hand from the providers' documented
wire formats (their "note" and "sources" fields say which), so these tests check that our requests
and our reading of answers and errors follow the formats; they say nothing about what a model would
answer. Bedrock goes through real botocore (boto3's client layer), which serialises the request and
signs it (SigV4) with fake credentials.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from conveyor.ai import LanguageModel, ModelSettings, ModelUnavailable, language_model
from conveyor.ai.anthropic import AnthropicModel
from conveyor.ai.bedrock import BedrockModel
from conveyor.ai.openai_compatible import OpenAICompatibleModel
from conveyor.errors import TransientError
from tests.support import free_port

CONTRACTS = Path(__file__).resolve().parents[1] / "contracts"
RECORDING_FILES = {
    "anthropic": "anthropic_messages.json",
    "bedrock": "bedrock_converse.json",
    "openai": "openai_chat_completions.json",
}
PROVIDERS = tuple(RECORDING_FILES)
Model = AnthropicModel | BedrockModel | OpenAICompatibleModel

# Fake, static AWS credentials: boto3 signs with them; nothing checks the signature but the test.
AWS_ACCESS_KEY_ID = "AKIDCONTRACTTEST0000"
AWS_SECRET_ACCESS_KEY = "contract-test-secret-access-key-0000"


def load(provider: str) -> dict[str, Any]:
    recording: dict[str, Any] = orjson.loads((CONTRACTS / RECORDING_FILES[provider]).read_bytes())
    assert "CONTRACT recording, not a model recording" in recording["note"]
    return recording


RECORDINGS = {provider: load(provider) for provider in PROVIDERS}


def cases(section: str) -> list[Any]:
    return [
        pytest.param(provider, case, id=f"{provider}-{case['case']}")
        for provider, recording in RECORDINGS.items()
        for case in recording[section]
    ]


# --- the recording server ------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """One request as it arrived on the wire."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Reply:
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    text: str | None = None
    delay_s: float = 0.0

    @classmethod
    def recorded(cls, response: Mapping[str, Any]) -> Reply:
        return cls(
            response["status"], response.get("headers", {}), response.get("body"), response.get("text")
        )


class RecordingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), RecordingHandler)
        self.seen: list[Seen] = []
        self.reply = Reply(500, body={"message": "no reply set by the test"})
        self.released = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class RecordingHandler(BaseHTTPRequestHandler):
    server: RecordingServer

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.server.seen.append(Seen(self.command, self.path, headers, orjson.loads(raw) if raw else None))
        reply = self.server.reply
        if reply.delay_s:
            self.server.released.wait(reply.delay_s)
        payload = reply.text.encode() if reply.text is not None else orjson.dumps(reply.body)
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if not any(name.lower() == "content-type" for name in reply.headers):
                self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first (the timeout tests)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: pytest shows the test's own output."""


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    httpd = RecordingServer()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.released.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture(autouse=True)
def offline_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Loopback without proxies, and AWS settings from the test alone (never ~/.aws or a role)."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_BEARER_TOKEN_BEDROCK",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_RETRY_MODE",
        "AWS_MAX_ATTEMPTS",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS_ACCESS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def settings_for(provider: str, url: str, **overrides: Any) -> ModelSettings:
    """The recording's settings pointed at ``url`` (OpenAI-compatible servers live under /v1)."""
    fields = dict(RECORDINGS[provider]["settings"])
    fields["base_url"] = url + "/v1" if provider == "openai" else url
    fields.update(overrides)
    return ModelSettings(**fields)


@pytest.fixture
def models() -> Iterator[list[Model]]:
    """Models built by a test, closed after it."""
    built: list[Model] = []
    yield built
    for model in built:
        model.close()


def build(models: list[Model], settings: ModelSettings, *, retried: bool = False) -> Model:
    """The model for ``settings``; Bedrock without botocore's own retries unless ``retried``, so
    that error cases take one request and no backoff."""
    model: LanguageModel = (
        BedrockModel(settings, max_retries=0)
        if settings.provider == "bedrock" and not retried
        else language_model(settings)
    )
    assert isinstance(model, AnthropicModel | BedrockModel | OpenAICompatibleModel)
    models.append(model)
    return model


def ask(model: LanguageModel, provider: str) -> Any:
    call = RECORDINGS[provider]["call"]
    return model.structured(
        instructions=call["instructions"], content=call["content"], schema=call["schema"], name=call["name"]
    )


def secrets_of(provider: str) -> list[str]:
    return [RECORDINGS[provider]["settings"].get("api_key") or AWS_SECRET_ACCESS_KEY]


# Where each provider carries the caller's schema in its request body.
SCHEMA_IN_BODY = {
    "anthropic": lambda body: body["tools"][0]["input_schema"],
    "bedrock": lambda body: body["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"],
    "openai": lambda body: body["response_format"]["json_schema"]["schema"],
}


# --- the recorded exchange -------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_request_and_answer_follow_the_recording(
    provider: str, server: RecordingServer, models: list[Model]
) -> None:
    recording = RECORDINGS[provider]
    server.reply = Reply.recorded(recording["response"])
    model = build(models, settings_for(provider, server.url), retried=True)

    result = ask(model, provider)

    assert result == recording["result"]
    assert model.description == f"{provider}:{recording['settings']['model']}"
    [seen] = server.seen
    expected = recording["request"]
    assert (seen.method, seen.path) == (expected["method"], expected["path"])
    for name, value in expected["headers"].items():
        assert seen.headers.get(name) == value, name
    assert seen.body == expected["body"]
    assert SCHEMA_IN_BODY[provider](seen.body) == recording["call"]["schema"]


def test_bedrock_request_is_signed_with_sigv4(server: RecordingServer, models: list[Model]) -> None:
    server.reply = Reply.recorded(RECORDINGS["bedrock"]["response"])
    ask(build(models, settings_for("bedrock", server.url)), "bedrock")

    [seen] = server.seen
    assert seen.path == "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse"
    authorization = seen.headers["authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 ")
    assert f"Credential={AWS_ACCESS_KEY_ID}/" in authorization
    assert "/us-east-1/bedrock/aws4_request" in authorization
    assert "x-amz-date" in seen.headers
    assert AWS_SECRET_ACCESS_KEY not in str(seen.headers)


@pytest.mark.parametrize(
    "variant", RECORDINGS["openai"]["variants"], ids=[v["case"] for v in RECORDINGS["openai"]["variants"]]
)
def test_openai_compatible_local_server(
    variant: dict[str, Any], server: RecordingServer, models: list[Model]
) -> None:
    server.reply = Reply.recorded(variant["response"])
    settings = ModelSettings(**variant["settings"], base_url=server.url + "/v1")

    result = ask(build(models, settings), "openai")

    assert result == RECORDINGS["openai"]["result"]
    [seen] = server.seen
    assert seen.path == variant["request"]["path"]
    assert seen.body == variant["request"]["body"]
    for name in variant["headers_absent"]:
        assert name not in seen.headers


# --- errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("provider", "case"), cases("errors"))
def test_http_error_is_model_unavailable_with_the_providers_words(
    provider: str, case: dict[str, Any], server: RecordingServer, models: list[Model]
) -> None:
    server.reply = Reply.recorded(case)
    model = build(models, settings_for(provider, server.url))

    with pytest.raises(ModelUnavailable) as caught:
        ask(model, provider)

    message = caught.value.message
    assert message.startswith(model.description + ": ")
    for fragment in case["message_contains"]:
        assert fragment in message
    for secret in secrets_of(provider):
        assert secret not in message
    assert len(server.seen) == 1


@pytest.mark.parametrize(("provider", "case"), cases("unusable_answers"))
def test_unusable_answer_is_model_unavailable(
    provider: str, case: dict[str, Any], server: RecordingServer, models: list[Model]
) -> None:
    server.reply = Reply.recorded(case)
    model = build(models, settings_for(provider, server.url))

    with pytest.raises(ModelUnavailable) as caught:
        ask(model, provider)

    for fragment in case["message_contains"]:
        assert fragment in caught.value.message


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_a_key_echoed_by_the_server_is_redacted(
    provider: str, server: RecordingServer, models: list[Model]
) -> None:
    key = RECORDINGS[provider]["settings"]["api_key"]
    server.reply = Reply(401, body={"error": {"type": "authentication_error", "message": f"bad key {key}"}})

    with pytest.raises(ModelUnavailable) as caught:
        ask(build(models, settings_for(provider, server.url)), provider)

    assert key not in caught.value.message
    assert "bad key [redacted]" in caught.value.message
    assert key not in repr(settings_for(provider, server.url))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_connection_refused_is_model_unavailable(provider: str, models: list[Model]) -> None:
    model = build(models, settings_for(provider, f"http://127.0.0.1:{free_port()}"))

    with pytest.raises(ModelUnavailable) as caught:
        ask(model, provider)

    assert caught.value.message.startswith(model.description + ": ")
    assert "connect" in caught.value.message.lower()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_timeout_is_model_unavailable(provider: str, server: RecordingServer, models: list[Model]) -> None:
    server.reply = Reply.recorded(RECORDINGS[provider]["response"])
    server.reply.delay_s = 5.0
    model = build(models, settings_for(provider, server.url, timeout_seconds=0.2))

    started = time.monotonic()
    with pytest.raises(ModelUnavailable) as caught:
        ask(model, provider)

    assert time.monotonic() - started < 2.0
    assert "no answer" in caught.value.message
    assert "0.2 s" in caught.value.message


def test_bedrock_lets_botocore_retry_throttling(server: RecordingServer, models: list[Model]) -> None:
    """One retry rather than the default two: botocore's backoff is random, up to 1 s the first time."""
    throttled = next(c for c in RECORDINGS["bedrock"]["errors"] if c["status"] == 429)
    server.reply = Reply.recorded(throttled)
    model = BedrockModel(settings_for("bedrock", server.url), max_retries=1)
    models.append(model)

    with pytest.raises(ModelUnavailable, match="ThrottlingException"):
        ask(model, "bedrock")

    assert len(server.seen) == 2


def test_model_unavailable_is_transient_and_crosses_processes() -> None:
    error = ModelUnavailable("openai:llama3.1:8b: HTTP 500 from http://127.0.0.1/v1/chat/completions")

    copy = pickle.loads(pickle.dumps(error))

    assert isinstance(copy, TransientError)
    assert copy.retryable
    assert copy.code == "model_unavailable"
    assert copy.message == error.message


# --- configuration -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"provider": "anthropic", "model": "claude-sonnet-4-5"}, "api_key"),
        ({"provider": "openai", "model": "gpt-4o", "api_key": "sk-x"}, "base_url"),
        ({"provider": "openai", "model": "llama3.1:8b", "base_url": "localhost:11434/v1"}, "base_url"),
        ({"provider": "bedrock", "model": "amazon.nova-pro-v1:0"}, "region"),
    ],
)
def test_language_model_names_the_missing_field(fields: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        language_model(ModelSettings(**fields))


@pytest.mark.parametrize(
    "fields",
    [
        {"provider": "openai", "model": "m", "base_url": "http://x", "temperature": 0},
        {"provider": "azure", "model": "m"},
        {"provider": "openai", "model": "m", "timeout_seconds": 0},
        {"provider": "openai", "model": "m", "max_tokens": 0},
        {"provider": "openai", "model": ""},
    ],
)
def test_settings_reject_unknown_or_out_of_range_fields(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ModelSettings(**fields)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_bad_structured_output_name_is_refused_before_any_request(
    provider: str, server: RecordingServer, models: list[Model]
) -> None:
    model = build(models, settings_for(provider, server.url))

    with pytest.raises(ValueError, match="name"):
        model.structured(instructions="i", content="c", schema={"type": "object"}, name="Timecard Entries")

    assert server.seen == []


def test_importing_conveyor_ai_does_not_import_botocore() -> None:
    """Offline is the default: a process without a configured model must not pay for botocore."""
    probe = "import sys, conveyor.ai; print('botocore' in sys.modules)"
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "False"
