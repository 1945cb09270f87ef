"""AWS Bedrock's Converse API through botocore (boto3's client layer); structured output through one
forced tool call."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    NoRegionError,
    ParamValidationError,
    ReadTimeoutError,
)

from conveyor.ai.model import ModelSettings, ModelUnavailable, checked_name, excerpt, unavailable


@functools.cache
def shared_data_loader() -> botocore.loaders.Loader:
    """botocore's reader of its service models, kept for the process: a new session would parse the
    endpoint rules and the bedrock-runtime model again, about 0.1 s a model object."""
    return botocore.loaders.create_loader()


class BedrockModel:
    """A model on Bedrock, signed with whatever the AWS credential chain finds (environment,
    profile, instance role); ``base_url`` overrides the endpoint (a VPC endpoint, a test server).

    Forcing the tool (``toolChoice.tool``) is what Claude and Mistral Large accept on Bedrock; the
    answer's ``toolUse.input`` is already a JSON document. botocore retries throttling, 5xx and
    connection errors itself ``max_retries`` times with backoff before we see the error.
    """

    def __init__(self, settings: ModelSettings, *, max_retries: int = 2) -> None:
        self._settings = settings
        config = Config(
            connect_timeout=settings.timeout_seconds,
            read_timeout=settings.timeout_seconds,
            retries={"max_attempts": max_retries},
        )
        session = botocore.session.get_session()
        session.register_component("data_loader", shared_data_loader())
        try:
            self._client: Any = session.create_client(
                "bedrock-runtime", region_name=settings.region, endpoint_url=settings.base_url, config=config
            )
        except NoRegionError as error:
            raise ValueError(
                "provider 'bedrock' needs region (or AWS_REGION / AWS_DEFAULT_REGION in the environment)"
            ) from error

    @property
    def description(self) -> str:
        return f"bedrock:{self._settings.model}"

    def structured(self, *, instructions: str, content: str, schema: Mapping[str, Any], name: str) -> Any:
        tool = {
            "name": checked_name(name),
            "description": f"Record the {name.replace('_', ' ')} found in the user's message.",
            "inputSchema": {"json": dict(schema)},
        }
        answer = self._converse(
            modelId=self._settings.model,
            system=[{"text": instructions}],
            messages=[{"role": "user", "content": [{"text": content}]}],
            toolConfig={"tools": [{"toolSpec": tool}], "toolChoice": {"tool": {"name": name}}},
            inferenceConfig={"maxTokens": self._settings.max_tokens, "temperature": 0},
        )
        return self._tool_input(answer, name)

    def _converse(self, **request: Any) -> Mapping[str, Any]:
        """The Converse answer; a request botocore itself rejects (ParamValidationError) is our bug
        and is not caught."""
        try:
            answer: Mapping[str, Any] = self._client.converse(**request)
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
            details = error.response.get("Error", {})
            code, text = details.get("Code", "?"), details.get("Message", "")
            raise self._unavailable(f"HTTP {status} {code}: {excerpt(text, 500)}") from error
        except (ReadTimeoutError, ConnectTimeoutError) as error:
            raise self._unavailable(
                f"no answer within {self._settings.timeout_seconds:g} s ({type(error).__name__})"
            ) from error
        except ParamValidationError:
            raise
        except BotoCoreError as error:
            raise self._unavailable(f"{type(error).__name__}: {error}") from error
        return answer

    def _tool_input(self, answer: Mapping[str, Any], name: str) -> dict[str, Any]:
        stop_reason = answer.get("stopReason")
        if stop_reason == "max_tokens":
            raise self._unavailable(
                f"the answer was cut off at maxTokens={self._settings.max_tokens} "
                f"before the {name} tool call was complete"
            )
        blocks = answer.get("output", {}).get("message", {}).get("content", [])
        texts: list[str] = []
        for block in blocks:
            tool_use = block.get("toolUse")
            if isinstance(tool_use, dict) and tool_use.get("name") == name:
                tool_input = tool_use.get("input")
                if isinstance(tool_input, dict):
                    return tool_input
                raise self._unavailable(f"the {name} tool input is not a JSON object")
            if isinstance(block.get("text"), str):
                texts.append(block["text"])
        text = " ".join(texts)
        raise self._unavailable(
            f"no {name} tool call in the answer (stopReason {stop_reason!r})"
            + (f": {excerpt(text)}" if text else "")
        )

    def _unavailable(self, problem: str) -> ModelUnavailable:
        return unavailable(self.description, problem)

    def close(self) -> None:
        self._client.close()
