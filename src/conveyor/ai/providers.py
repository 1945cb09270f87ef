"""Choosing the provider adapter for a ModelSettings; each adapter is imported only when chosen."""

from __future__ import annotations

import httpx

from conveyor.ai.model import LanguageModel, ModelSettings


def language_model(settings: ModelSettings) -> LanguageModel:
    """The model ``settings`` describe; a ValueError names the field that is missing or wrong.

    Adapters are imported here rather than at the top so that a process configured without a model
    (the default) never imports boto3.
    """
    if settings.base_url is not None:
        checked_base_url(settings.base_url)
    if settings.provider == "anthropic":
        from conveyor.ai.anthropic import AnthropicModel

        return AnthropicModel(settings)
    if settings.provider == "openai":
        from conveyor.ai.openai_compatible import OpenAICompatibleModel

        return OpenAICompatibleModel(settings)
    from conveyor.ai.bedrock import BedrockModel

    return BedrockModel(settings)


def checked_base_url(base_url: str) -> str:
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL as error:
        raise ValueError(f"base_url {base_url!r} is not a URL: {error}") from error
    if url.scheme not in {"http", "https"} or not url.host:
        raise ValueError(f"base_url {base_url!r} must be an http:// or https:// URL with a host")
    return base_url
