"""Optional language models behind one small interface: Anthropic, AWS Bedrock, OpenAI-compatible.

Nothing here is used unless a model is configured; pipelines receive a ``LanguageModel`` (or None)
through their context and never build one themselves.
"""

from conveyor.ai.model import LanguageModel, ModelSettings, ModelUnavailable
from conveyor.ai.providers import language_model

__all__ = ["LanguageModel", "ModelSettings", "ModelUnavailable", "language_model"]
