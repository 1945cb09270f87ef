"""Anthropic's Messages API over httpx, with structured output through one forced tool call."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conveyor.ai.model import ModelSettings, checked_name, excerpt
from conveyor.ai.transport import JsonTransport

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"


class AnthropicModel:
    """Claude through https://api.anthropic.com (or a gateway that speaks the same API).

    Forcing the one tool (``tool_choice`` of type ``tool``) makes the answer a ``tool_use`` block whose
    ``input`` the API has already parsed as JSON against ``input_schema``: no text to scrape.
    """

    def __init__(self, settings: ModelSettings) -> None:
        if settings.api_key is None:
            raise ValueError("provider 'anthropic' needs api_key (sent as the x-api-key header)")
        key = settings.api_key.get_secret_value()
        self._settings = settings
        self._url = (settings.base_url or DEFAULT_BASE_URL).rstrip("/") + "/v1/messages"
        self._headers = {
            "x-api-key": key,
            "anthropic-version": API_VERSION,
            "content-type": "application/json",
        }
        self._transport = JsonTransport(
            description=self.description, timeout_s=settings.timeout_seconds, secret=key
        )

    @property
    def description(self) -> str:
        return f"anthropic:{self._settings.model}"

    def structured(self, *, instructions: str, content: str, schema: Mapping[str, Any], name: str) -> Any:
        body = {
            "model": self._settings.model,
            "max_tokens": self._settings.max_tokens,
            "temperature": 0,
            "system": instructions,
            "messages": [{"role": "user", "content": content}],
            "tools": [
                {
                    "name": checked_name(name),
                    "description": f"Record the {name.replace('_', ' ')} found in the user's message.",
                    "input_schema": dict(schema),
                }
            ],
            "tool_choice": {"type": "tool", "name": name},
        }
        answer = self._transport.post(self._url, headers=self._headers, body=body)
        return self._tool_input(answer, name)

    def _tool_input(self, answer: Mapping[str, Any], name: str) -> dict[str, Any]:
        """The forced tool call's input; a truncated answer is refused even when a block is present,
        because its input may be cut short."""
        stop_reason = answer.get("stop_reason")
        if stop_reason == "max_tokens":
            raise self._transport.unavailable(
                f"the answer was cut off at max_tokens={self._settings.max_tokens} "
                f"before the {name} tool call was complete"
            )
        blocks = answer.get("content")
        blocks = blocks if isinstance(blocks, list) else []
        for block in blocks:
            if isinstance(block, dict) and block.get("type") == "tool_use" and block.get("name") == name:
                tool_input = block.get("input")
                if isinstance(tool_input, dict):
                    return tool_input
                raise self._transport.unavailable(f"the {name} tool input is not a JSON object")
        text = " ".join(b["text"] for b in blocks if isinstance(b, dict) and isinstance(b.get("text"), str))
        raise self._transport.unavailable(
            f"no {name} tool call in the answer (stop_reason {stop_reason!r})"
            + (f": {excerpt(text)}" if text else "")
        )

    def close(self) -> None:
        self._transport.close()
