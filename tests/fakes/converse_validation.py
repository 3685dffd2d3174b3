"""Request validation for Converse and ConverseStream, with Bedrock's error wording.

Member names come from botocore's bedrock-runtime model (a unit test keeps them in sync).
Unknown members are rejected: stricter than a lenient server, on purpose, so that a gateway
sending a misspelt or invented field fails loudly in tests.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import re
from typing import Any

from .catalogue import FoundationModel
from .errors import validation

TOP_LEVEL_MEMBERS = frozenset(
    {
        "messages",
        "system",
        "inferenceConfig",
        "toolConfig",
        "guardrailConfig",
        "additionalModelRequestFields",
        "promptVariables",
        "additionalModelResponseFieldPaths",
        "requestMetadata",
        "performanceConfig",
        "serviceTier",
        "outputConfig",
    }
)
MESSAGE_MEMBERS = frozenset({"role", "content"})
CONTENT_BLOCK_MEMBERS = frozenset(
    {
        "text",
        "image",
        "document",
        "video",
        "audio",
        "toolUse",
        "toolResult",
        "guardContent",
        "cachePoint",
        "reasoningContent",
        "citationsContent",
        "searchResult",
    }
)
SYSTEM_BLOCK_MEMBERS = frozenset({"text", "guardContent", "cachePoint"})
INFERENCE_CONFIG_MEMBERS = frozenset({"maxTokens", "temperature", "topP", "stopSequences"})
IMAGE_MEMBERS = frozenset({"format", "source", "error"})
IMAGE_SOURCE_MEMBERS = frozenset({"bytes", "s3Location"})
IMAGE_FORMATS = frozenset({"png", "jpeg", "gif", "webp"})
TOOL_USE_MEMBERS = frozenset({"toolUseId", "name", "input", "type"})
TOOL_RESULT_MEMBERS = frozenset({"toolUseId", "content", "status", "type"})
TOOL_RESULT_CONTENT_MEMBERS = frozenset(
    {"json", "text", "image", "document", "video", "searchResult"}
)
TOOL_CONFIG_MEMBERS = frozenset({"tools", "toolChoice"})
TOOL_MEMBERS = frozenset({"toolSpec", "systemTool", "cachePoint"})
TOOL_SPEC_MEMBERS = frozenset({"name", "description", "inputSchema", "strict"})
TOOL_CHOICE_MEMBERS = frozenset({"auto", "any", "tool"})
REASONING_MEMBERS = frozenset({"reasoningText", "redactedContent"})

# The model allows 2500; the fake holds gateways to OpenAI's own limit of 4.
MAX_STOP_SEQUENCES = 4

_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_TOOL_USE_ID = re.compile(r"[a-zA-Z0-9_.:-]{1,64}")


def _fmt(path: str, what: str) -> Exception:
    return validation(
        f"The format of the value at {path} is invalid. Provide a {what} for the field and "
        "try again."
    )


def _constraint(value: Any, path: str, constraint: str) -> Exception:
    # The wording of AWS's generated (Coral) model validation.
    return validation(
        f"1 validation error detected: Value '{value}' at '{path}' failed to satisfy "
        f"constraint: {constraint}"
    )


def _obj(value: Any, path: str, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fmt(path, "json object")
    for key in value:
        if key not in allowed:
            raise validation(f"Unknown field '{key}' at '{path}'. Remove it and try again.")
    return value


def _union(value: Any, path: str, allowed: frozenset[str], what: str) -> tuple[str, Any]:
    block = _obj(value, path, allowed)
    if len(block) != 1:
        raise validation(
            f"The {what} object at {path} must set exactly one of the following keys: "
            f"{', '.join(sorted(allowed))}."
        )
    ((key, inner),) = block.items()
    return key, inner


def _text(value: Any, path: str, what: str) -> None:
    if not isinstance(value, str):
        raise _fmt(path, "string")
    if not value.strip():
        raise validation(
            f"The text field in the {what} object at {path} is blank. Add text to the text "
            "field, and try again."
        )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class ConverseValidator:
    """Validates one Converse request body for one resolved model."""

    def __init__(self, body: Any, model: FoundationModel) -> None:
        self.body = body
        self.model = model
        self.uses_tools = False

    def validate(self) -> None:
        body = _obj(self.body, "body", TOP_LEVEL_MEMBERS)
        self._system(body.get("system"))
        self._inference_config(body.get("inferenceConfig"))
        messages = body.get("messages")
        if not isinstance(messages, list):
            raise _fmt("messages", "list")
        if not messages:
            raise validation("The messages field is empty. Add at least one message and try again.")
        for i, message in enumerate(messages):
            self._message(message, f"messages.{i}")
        self._alternation(messages)
        if self.uses_tools and body.get("toolConfig") is None:
            raise validation(
                "The toolConfig field must be defined when using toolUse and toolResult "
                "content blocks."
            )
        if body.get("toolConfig") is not None:
            self._tool_config(body["toolConfig"])
        self._tool_pairing(messages)
        self._model_quirks(body, messages)
        extra = body.get("additionalModelRequestFields")
        if extra is not None and not isinstance(extra, dict):
            raise _fmt("additionalModelRequestFields", "json object")

    def _system(self, system: Any) -> None:
        if system is None:
            return
        if not isinstance(system, list):
            raise _fmt("system", "list")
        for i, block in enumerate(system):
            key, inner = _union(block, f"system.{i}", SYSTEM_BLOCK_MEMBERS, "SystemContentBlock")
            if key == "text":
                _text(inner, f"system.{i}", "SystemContentBlock")

    def _inference_config(self, config: Any) -> None:
        if config is None:
            return
        cfg = _obj(config, "inferenceConfig", INFERENCE_CONFIG_MEMBERS)
        if "maxTokens" in cfg:
            value = cfg["maxTokens"]
            if not isinstance(value, int) or isinstance(value, bool):
                raise _fmt("inferenceConfig.maxTokens", "integer")
            if value < 1:
                raise _constraint(
                    value,
                    "inferenceConfig.maxTokens",
                    "Member must have value greater than or equal to 1",
                )
        for name in ("temperature", "topP"):
            if name in cfg:
                value = cfg[name]
                if not _number(value):
                    raise _fmt(f"inferenceConfig.{name}", "number")
                if value < 0:
                    raise _constraint(
                        value,
                        f"inferenceConfig.{name}",
                        "Member must have value greater than or equal to 0",
                    )
                if value > 1:
                    raise _constraint(
                        value,
                        f"inferenceConfig.{name}",
                        "Member must have value less than or equal to 1",
                    )
        if "stopSequences" in cfg:
            stops = cfg["stopSequences"]
            if not isinstance(stops, list):
                raise _fmt("inferenceConfig.stopSequences", "list")
            for j, stop in enumerate(stops):
                if not isinstance(stop, str) or not stop:
                    raise _fmt(f"inferenceConfig.stopSequences.{j}", "non-empty string")
            if len(stops) > MAX_STOP_SEQUENCES:
                raise validation(
                    f"The number of stop sequences ({len(stops)}) exceeds the limit of "
                    f"{MAX_STOP_SEQUENCES}. Remove some and try again."
                )

    def _message(self, message: Any, path: str) -> None:
        msg = _obj(message, path, MESSAGE_MEMBERS)
        role = msg.get("role")
        if role not in ("user", "assistant"):
            raise _constraint(
                role,
                # Coral names list elements '<list>.<index>.member'.
                f"{path}.member.role",
                "Member must satisfy enum value set: [user, assistant]",
            )
        content = msg.get("content")
        if not isinstance(content, list):
            raise _fmt(f"{path}.content", "list")
        if not content:
            raise validation(
                f"The content field in the Message object at {path} is empty. Add a "
                "ContentBlock object to the content field and try again."
            )
        for j, block in enumerate(content):
            self._content_block(block, f"{path}.content.{j}", role)

    def _content_block(self, block: Any, path: str, role: str) -> None:
        key, inner = _union(block, path, CONTENT_BLOCK_MEMBERS, "ContentBlock")
        if key == "text":
            _text(inner, path, "ContentBlock")
        elif key == "image":
            self._image(inner, f"{path}.image")
        elif key == "toolUse":
            self.uses_tools = True
            if role != "assistant":
                raise validation(f"The toolUse block at {path} is only allowed in assistant turns.")
            self._tool_use(inner, f"{path}.toolUse")
        elif key == "toolResult":
            self.uses_tools = True
            if role != "user":
                raise validation(f"The toolResult block at {path} is only allowed in user turns.")
            self._tool_result(inner, f"{path}.toolResult")
        elif key == "reasoningContent":
            if role != "assistant":
                raise validation(
                    f"The reasoningContent block at {path} is only allowed in assistant turns."
                )
            rkey, rinner = _union(
                inner, f"{path}.reasoningContent", REASONING_MEMBERS, "ReasoningContentBlock"
            )
            if rkey == "reasoningText":
                rtext = _obj(
                    rinner,
                    f"{path}.reasoningContent.reasoningText",
                    frozenset({"text", "signature"}),
                )
                if not isinstance(rtext.get("text"), str):
                    raise _fmt(f"{path}.reasoningContent.reasoningText.text", "string")
        elif key == "cachePoint":
            point = _obj(inner, f"{path}.cachePoint", frozenset({"type", "ttl"}))
            if point.get("type") != "default":
                raise _constraint(
                    point.get("type"),
                    f"{path}.cachePoint.type",
                    "Member must satisfy enum value set: [default]",
                )
        elif key == "document":
            doc = _obj(
                inner,
                f"{path}.document",
                frozenset({"format", "name", "source", "context", "citations"}),
            )
            if not isinstance(doc.get("name"), str) or not isinstance(doc.get("source"), dict):
                raise _fmt(f"{path}.document", "document block with a name and a source")
        elif not isinstance(inner, dict):
            raise _fmt(f"{path}.{key}", "json object")

    def _image(self, value: Any, path: str) -> None:
        if "IMAGE" not in self.model.input_modalities:
            raise validation(
                "This model doesn't support the image content block that you provided. Try "
                "again with a supported content block."
            )
        image = _obj(value, path, IMAGE_MEMBERS)
        if image.get("format") not in IMAGE_FORMATS:
            raise _constraint(
                image.get("format"),
                f"{path}.format",
                "Member must satisfy enum value set: [png, jpeg, gif, webp]",
            )
        key, inner = _union(
            image.get("source"), f"{path}.source", IMAGE_SOURCE_MEMBERS, "ImageSource"
        )
        if key == "bytes":
            # Blobs travel as base64 strings in rest-json bodies.
            if not isinstance(inner, str):
                raise _fmt(f"{path}.source.bytes", "base64-encoded string")
            try:
                raw = base64.b64decode(inner, validate=True)
            except (binascii.Error, ValueError):
                raise _fmt(f"{path}.source.bytes", "base64-encoded string") from None
            if not raw:
                raise validation(f"The image at {path} is empty. Provide image bytes.")

    def _tool_use(self, value: Any, path: str) -> None:
        use = _obj(value, path, TOOL_USE_MEMBERS)
        if not isinstance(use.get("toolUseId"), str) or not _TOOL_USE_ID.fullmatch(
            use["toolUseId"]
        ):
            raise _fmt(f"{path}.toolUseId", "tool use id")
        if not isinstance(use.get("name"), str) or not _TOOL_NAME.fullmatch(use["name"]):
            raise _fmt(f"{path}.name", "tool name")
        if not isinstance(use.get("input"), dict):
            raise _fmt(f"{path}.input", "json object")

    def _tool_result(self, value: Any, path: str) -> None:
        result = _obj(value, path, TOOL_RESULT_MEMBERS)
        if not isinstance(result.get("toolUseId"), str):
            raise _fmt(f"{path}.toolUseId", "tool use id")
        status = result.get("status")
        if status is not None and status not in ("success", "error"):
            raise _constraint(
                status, f"{path}.status", "Member must satisfy enum value set: [success, error]"
            )
        content = result.get("content")
        if not isinstance(content, list):
            raise _fmt(f"{path}.content", "list")
        if not content and status == "error":
            raise validation(
                f"The content field at {path} cannot be empty when status value is error."
            )
        for k, item in enumerate(content):
            key, inner = _union(
                item, f"{path}.content.{k}", TOOL_RESULT_CONTENT_MEMBERS, "ToolResultContentBlock"
            )
            if key == "json" and not isinstance(inner, dict):
                raise _fmt(f"{path}.content.{k}.json", "json object")
            if key == "text" and not isinstance(inner, str):
                raise _fmt(f"{path}.content.{k}.text", "string")
            if key == "image":
                self._image(inner, f"{path}.content.{k}.image")

    def _tool_config(self, value: Any) -> None:
        config = _obj(value, "toolConfig", TOOL_CONFIG_MEMBERS)
        tools = config.get("tools")
        if not isinstance(tools, list):
            raise _fmt("toolConfig.tools", "list")
        if not tools:
            raise _constraint(
                "[]", "toolConfig.tools", "Member must have length greater than or equal to 1"
            )
        for i, tool in enumerate(tools):
            key, inner = _union(tool, f"toolConfig.tools.{i}", TOOL_MEMBERS, "Tool")
            if key == "toolSpec":
                spec = _obj(inner, f"toolConfig.tools.{i}.toolSpec", TOOL_SPEC_MEMBERS)
                name = spec.get("name")
                if not isinstance(name, str) or not _TOOL_NAME.fullmatch(name):
                    raise _constraint(
                        name,
                        f"toolConfig.tools.{i}.member.toolSpec.name",
                        "Member must satisfy regular expression pattern: [a-zA-Z0-9_-]+",
                    )
                if "description" in spec and (
                    not isinstance(spec["description"], str) or not spec["description"]
                ):
                    raise _fmt(f"toolConfig.tools.{i}.toolSpec.description", "non-empty string")
                skey, schema = _union(
                    spec.get("inputSchema"),
                    f"toolConfig.tools.{i}.toolSpec.inputSchema",
                    frozenset({"json"}),
                    "ToolInputSchema",
                )
                if not isinstance(schema, dict):
                    raise _fmt(f"toolConfig.tools.{i}.toolSpec.inputSchema.{skey}", "json object")
        if config.get("toolChoice") is not None:
            key, inner = _union(
                config["toolChoice"], "toolConfig.toolChoice", TOOL_CHOICE_MEMBERS, "ToolChoice"
            )
            allowed = frozenset({"name"}) if key == "tool" else frozenset()
            choice = _obj(inner, f"toolConfig.toolChoice.{key}", allowed)
            if key == "tool" and not isinstance(choice.get("name"), str):
                raise _fmt("toolConfig.toolChoice.tool.name", "tool name")

    @staticmethod
    def _alternation(messages: list[dict[str, Any]]) -> None:
        if messages[0]["role"] != "user":
            raise validation(
                "A conversation must start with a user message. Try again with a conversation "
                "that starts with a user message."
            )
        for prev, cur in itertools.pairwise(messages):
            if prev["role"] == cur["role"]:
                raise validation(
                    "A conversation must alternate between user and assistant roles. Make sure "
                    "the conversation alternates between user and assistant roles and try again."
                )

    @staticmethod
    def _tool_pairing(messages: list[dict[str, Any]]) -> None:
        def ids(message: dict[str, Any], kind: str) -> list[str]:
            return [b[kind]["toolUseId"] for b in message["content"] if kind in b]

        for i, message in enumerate(messages):
            if message["role"] != "user":
                continue
            results = ids(message, "toolResult")
            uses = ids(messages[i - 1], "toolUse") if i > 0 else []
            if len(results) > len(uses):
                raise validation(
                    f"The number of toolResult blocks at messages.{i}.content exceeds the "
                    "number of toolUse blocks of previous turn."
                )
            if sorted(results) != sorted(uses):
                raise validation(
                    f"Expected toolResult blocks at messages.{i}.content for the following "
                    f"Ids: {', '.join(uses)}, but found: {', '.join(results) or 'none'}"
                )

    def _model_quirks(self, body: dict[str, Any], messages: list[dict[str, Any]]) -> None:
        config = body.get("inferenceConfig") or {}
        if (
            self.model.rejects_temperature_with_top_p
            and "temperature" in config
            and "topP" in config
        ):
            raise validation(
                "The model returned the following errors: `temperature` and `top_p` cannot "
                "both be specified for this model. Please use only one."
            )
        if self.model.rejects_assistant_prefill and messages[-1]["role"] == "assistant":
            raise validation(
                "The model returned the following errors: This model does not support "
                "assistant message prefill. The conversation must end with a user message."
            )


def validate_converse(body: Any, model: FoundationModel) -> None:
    """Raise AwsError(ValidationException) if Bedrock would reject this Converse body."""
    ConverseValidator(body, model).validate()
