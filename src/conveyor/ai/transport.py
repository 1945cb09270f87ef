"""One JSON POST to an HTTP model API, with every way it can fail turned into ModelUnavailable."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from conveyor.ai.model import ModelUnavailable, excerpt, unavailable

# Response headers that carry the provider's request id: worth quoting to its support.
REQUEST_ID_HEADERS = ("request-id", "x-request-id")


class JsonTransport:
    """An httpx client for one model object: one connection pool, one timeout, one secret to redact."""

    def __init__(self, *, description: str, timeout_s: float, secret: str | None) -> None:
        self._description = description
        self._timeout_s = timeout_s
        self._secret = secret
        self._client = httpx.Client(timeout=timeout_s)

    def post(self, url: str, *, headers: Mapping[str, str], body: Mapping[str, Any]) -> dict[str, Any]:
        """The JSON object the server answered with a 2xx status."""
        try:
            response = self._client.post(url, content=orjson.dumps(body), headers=dict(headers))
        except httpx.TimeoutException as error:
            raise self.unavailable(
                f"no answer from {url} within {self._timeout_s:g} s ({type(error).__name__})"
            ) from error
        except httpx.HTTPError as error:
            raise self.unavailable(f"cannot reach {url}: {type(error).__name__}: {error}") from error
        if not response.is_success:
            raise self.unavailable(f"HTTP {response.status_code} from {url}: {error_message(response)}")
        try:
            answer = orjson.loads(response.content)
        except orjson.JSONDecodeError as error:
            raise self.unavailable(
                f"HTTP {response.status_code} with a body that is not JSON: {excerpt(response.text)}"
            ) from error
        if not isinstance(answer, dict):
            raise self.unavailable(f"HTTP {response.status_code} with JSON that is not an object")
        return answer

    def unavailable(self, problem: str) -> ModelUnavailable:
        return unavailable(self._description, problem, secret=self._secret)

    def close(self) -> None:
        self._client.close()


def error_message(response: httpx.Response) -> str:
    """The provider's own words for a failed call, from whichever error shape it uses.

    Anthropic: ``{"type": "error", "error": {"type", "message"}}``; OpenAI and most compatible
    servers: ``{"error": {"message", "type", "code"}}``; Ollama also ``{"error": "text"}``; vLLM
    ``{"object": "error", "message", "type"}``. Anything else (a proxy's HTML page) is quoted briefly.
    """
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    detail = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(detail, dict) and isinstance(detail.get("message"), str):
        kind = detail.get("type") or detail.get("code")
        text = f"{kind}: {detail['message']}" if isinstance(kind, str) and kind else detail["message"]
    elif isinstance(detail, str):
        text = detail
    else:
        text = response.text or response.reason_phrase
    request_id = next((response.headers[h] for h in REQUEST_ID_HEADERS if h in response.headers), None)
    suffix = f" (request id {request_id})" if request_id else ""
    return excerpt(text, 500) + suffix
