"""The one interface the pipelines use to ask a language model for JSON, its settings and its error."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from conveyor.errors import TransientError

# Tool names and json_schema names must satisfy every provider; this is the subset all of them accept.
NAME_PATTERN = re.compile(r"[a-z_]{1,64}")


class ModelUnavailable(TransientError):
    """The provider could not be reached, refused the call, or answered with something that is not the
    JSON asked for."""

    code = "model_unavailable"


class ModelSettings(BaseModel):
    """Which provider and model to call, and how.

    ``base_url`` is the API root for Anthropic (default https://api.anthropic.com) and for an
    OpenAI-compatible server (required, e.g. http://localhost:11434/v1 for Ollama); for Bedrock it
    overrides the endpoint URL. ``api_key`` is required for Anthropic, optional for OpenAI-compatible
    servers and unused by Bedrock, which takes the boto3 credential chain.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: Literal["anthropic", "bedrock", "openai"]
    model: str = Field(min_length=1)
    base_url: str | None = None
    api_key: SecretStr | None = None
    region: str | None = None
    timeout_seconds: float = Field(default=60, gt=0)
    max_tokens: int = Field(default=4096, gt=0)


class LanguageModel(Protocol):
    """A model that answers one request with one JSON value; providers differ only in transport."""

    @property
    def description(self) -> str:
        """``provider:model``, for messages and for findings that say where a value came from."""
        ...

    def structured(self, *, instructions: str, content: str, schema: Mapping[str, Any], name: str) -> Any:
        """Ask for one JSON object matching ``schema`` (a JSON Schema with ``type: object`` at the top).

        ``instructions`` is the system prompt, ``content`` the user message, ``name`` ([a-z_]+) the
        tool or json_schema name. Returns the parsed object. The answer is not checked against
        ``schema`` here: the caller validates it with its own rules and decides what to keep.
        Raises ModelUnavailable on transport errors, timeouts, HTTP errors, refusals, a missing tool
        call or unparsable JSON; its message names the provider and model and never holds the key.
        """
        ...


def checked_name(name: str) -> str:
    """``name`` when every provider accepts it as a tool or schema name; a caller's bug otherwise."""
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"structured output name {name!r} must match [a-z_]{{1,64}}")
    return name


def unavailable(description: str, problem: str, *, secret: str | None = None) -> ModelUnavailable:
    """A ModelUnavailable naming the model; ``secret`` is cut out wherever a server echoed it back."""
    message = f"{description}: {problem}"
    if secret:
        message = message.replace(secret, "[redacted]")
    return ModelUnavailable(message)


def excerpt(text: str, limit: int = 200) -> str:
    """The start of a model's or a server's text, on one line, for an error message that stays short."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
