"""Any OpenAI-compatible chat completions endpoint (OpenAI, vLLM, Ollama, llama.cpp server) over httpx."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from conveyor.ai.model import ModelSettings, checked_name, excerpt
from conveyor.ai.transport import JsonTransport

# Some local servers wrap the JSON in a Markdown fence even under a json_schema response format.
FENCE = re.compile(r"\A\s*```(?:json)?[ \t]*\n?(?P<body>.*?)\n?[ \t]*```\s*\Z", re.DOTALL | re.IGNORECASE)


class OpenAICompatibleModel:
    """Structured output through ``response_format`` of type ``json_schema`` with ``strict: true``.

    OpenAI's strict mode needs every property listed in ``required`` and ``additionalProperties:
    false`` on every object; local servers turn the schema into a grammar and are less particular.
    """

    def __init__(self, settings: ModelSettings) -> None:
        if not settings.base_url:
            raise ValueError(
                "provider 'openai' needs base_url, the API root such as https://api.openai.com/v1 "
                "or http://localhost:11434/v1 for Ollama"
            )
        key = settings.api_key.get_secret_value() if settings.api_key is not None else None
        self._settings = settings
        self._url = settings.base_url.rstrip("/") + "/chat/completions"
        self._headers = {"content-type": "application/json"}
        if key:
            self._headers["authorization"] = f"Bearer {key}"
        self._transport = JsonTransport(
            description=self.description, timeout_s=settings.timeout_seconds, secret=key
        )

    @property
    def description(self) -> str:
        return f"openai:{self._settings.model}"

    def structured(self, *, instructions: str, content: str, schema: Mapping[str, Any], name: str) -> Any:
        body = {
            "model": self._settings.model,
            "messages": [
                {"role": "system", "content": instructions},
                {"role": "user", "content": content},
            ],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": checked_name(name), "schema": dict(schema), "strict": True},
            },
            "max_tokens": self._settings.max_tokens,
        }
        answer = self._transport.post(self._url, headers=self._headers, body=body)
        return self._parsed_content(answer)

    def _parsed_content(self, answer: Mapping[str, Any]) -> dict[str, Any]:
        choices = answer.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        if not isinstance(choice, dict):
            raise self._transport.unavailable("the answer has no choices")
        message = choice.get("message")
        message = message if isinstance(message, dict) else {}
        finish_reason = choice.get("finish_reason")
        if message.get("refusal"):
            raise self._transport.unavailable(f"the model refused: {excerpt(str(message['refusal']))}")
        if finish_reason == "length":
            raise self._transport.unavailable(
                f"the answer was cut off at max_tokens={self._settings.max_tokens} (finish_reason 'length')"
            )
        text = message.get("content")
        if not isinstance(text, str) or not text.strip():
            raise self._transport.unavailable(f"the answer has no content (finish_reason {finish_reason!r})")
        fenced = FENCE.match(text)
        try:
            value = orjson.loads(fenced["body"] if fenced else text)
        except orjson.JSONDecodeError as error:
            raise self._transport.unavailable(
                f"the content is not JSON ({error}): {excerpt(text)}"
            ) from error
        if not isinstance(value, dict):
            raise self._transport.unavailable(f"the content is JSON but not an object: {excerpt(text)}")
        return value

    def close(self) -> None:
        self._transport.close()
