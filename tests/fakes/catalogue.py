"""The fake's model catalogue: foundation models, inference profiles, and id resolution."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import AwsError, validation

ACCOUNT_ID = "123456789012"
# Fixed timestamps keep listings byte-for-byte stable between runs.
_CREATED = "2024-08-27T00:00:00Z"

INVALID_MODEL_ID = "The provided model identifier is invalid."


@dataclass
class FoundationModel:
    model_id: str
    name: str
    provider: str
    input_modalities: list[str]
    output_modalities: list[str]
    inference_types: list[str]
    streaming: bool = True
    # Which InvokeModel body schema the model accepts (embedding models only).
    invoke_schema: str | None = None
    # Quirks of newer Claude models that the gateway must avoid tripping over.
    rejects_temperature_with_top_p: bool = False
    rejects_assistant_prefill: bool = False
    status: str = "ACTIVE"

    def arn(self, region: str) -> str:
        return f"arn:aws:bedrock:{region}::foundation-model/{self.model_id}"

    def summary(self, region: str) -> dict[str, Any]:
        """A FoundationModelSummary as ListFoundationModels returns it."""
        return {
            "modelArn": self.arn(region),
            "modelId": self.model_id,
            "modelName": self.name,
            "providerName": self.provider,
            "inputModalities": list(self.input_modalities),
            "outputModalities": list(self.output_modalities),
            "responseStreamingSupported": self.streaming,
            "customizationsSupported": [],
            "inferenceTypesSupported": list(self.inference_types),
            "modelLifecycle": {"status": self.status},
        }


@dataclass
class InferenceProfile:
    profile_id: str
    name: str
    model_id: str
    type: str = "SYSTEM_DEFINED"
    # Regions the profile routes to; one foundation-model ARN per region is listed.
    regions: list[str] = field(default_factory=lambda: ["us-east-1"])
    description: str = ""
    arn: str = ""

    def profile_arn(self, region: str) -> str:
        if self.arn:
            return self.arn
        return f"arn:aws:bedrock:{region}:{ACCOUNT_ID}:inference-profile/{self.profile_id}"

    def callable_as(self, region: str) -> tuple[str, ...]:
        # Application profiles are invoked by ARN; system ones by id or ARN.
        if self.type == "APPLICATION":
            return (self.profile_arn(region),)
        return (self.profile_id, self.profile_arn(region))

    def summary(self, region: str) -> dict[str, Any]:
        """An InferenceProfileSummary as ListInferenceProfiles returns it."""
        out: dict[str, Any] = {
            "inferenceProfileName": self.name,
            "inferenceProfileArn": self.profile_arn(region),
            "models": [
                {"modelArn": f"arn:aws:bedrock:{r}::foundation-model/{self.model_id}"}
                for r in self.regions
            ],
            "inferenceProfileId": self.profile_id,
            "status": "ACTIVE",
            "type": self.type,
            "createdAt": _CREATED,
            "updatedAt": _CREATED,
        }
        if self.description:
            out["description"] = self.description
        return out


@dataclass
class Catalogue:
    models: list[FoundationModel]
    profiles: list[InferenceProfile]

    def model(self, model_id: str) -> FoundationModel | None:
        return next((m for m in self.models if m.model_id == model_id), None)

    def resolve(self, identifier: str, region: str) -> FoundationModel:
        """Map a model id, model ARN, profile id or profile ARN to the model it runs."""
        for profile in self.profiles:
            if identifier in profile.callable_as(region):
                target = self.model(profile.model_id)
                if target is None:
                    raise validation(INVALID_MODEL_ID)
                return target
        model_id = identifier
        prefix = f"arn:aws:bedrock:{region}::foundation-model/"
        if identifier.startswith(prefix):
            model_id = identifier[len(prefix) :]
        model = self.model(model_id)
        if model is None:
            raise validation(INVALID_MODEL_ID)
        if "ON_DEMAND" not in model.inference_types:
            raise validation(
                f"Invocation of model ID {model.model_id} with on-demand throughput isn't "
                "supported. Retry your request with the ID or ARN of an inference profile "
                "that contains this model."
            )
        return model


_US = ["us-east-1", "us-east-2", "us-west-2"]
_EU = ["eu-central-1", "eu-west-1", "eu-west-3"]

HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
SONNET_37 = "anthropic.claude-3-7-sonnet-20250219-v1:0"
LLAMA3_8B = "meta.llama3-8b-instruct-v1:0"
TITAN_EMBED_V1 = "amazon.titan-embed-text-v1"
TITAN_EMBED_V2 = "amazon.titan-embed-text-v2:0"
COHERE_EMBED_EN = "cohere.embed-english-v3"
APP_PROFILE_ARN = f"arn:aws:bedrock:us-east-1:{ACCOUNT_ID}:application-inference-profile/abc123"


def default_catalogue() -> Catalogue:
    """A fresh, mutable copy of the default models and profiles."""
    models = [
        FoundationModel(
            HAIKU, "Claude 3 Haiku", "Anthropic", ["TEXT", "IMAGE"], ["TEXT"], ["ON_DEMAND"]
        ),
        FoundationModel(
            SONNET_37,
            "Claude 3.7 Sonnet",
            "Anthropic",
            ["TEXT", "IMAGE"],
            ["TEXT"],
            ["INFERENCE_PROFILE"],
        ),
        FoundationModel(
            LLAMA3_8B, "Llama 3 8B Instruct", "Meta", ["TEXT"], ["TEXT"], ["ON_DEMAND"]
        ),
        FoundationModel(
            TITAN_EMBED_V1,
            "Titan Embeddings G1 - Text",
            "Amazon",
            ["TEXT"],
            ["EMBEDDING"],
            ["ON_DEMAND"],
            streaming=False,
            invoke_schema="titan-embed-v1",
        ),
        FoundationModel(
            TITAN_EMBED_V2,
            "Titan Text Embeddings V2",
            "Amazon",
            ["TEXT"],
            ["EMBEDDING"],
            ["ON_DEMAND"],
            streaming=False,
            invoke_schema="titan-embed-v2",
        ),
        FoundationModel(
            COHERE_EMBED_EN,
            "Embed English",
            "Cohere",
            ["TEXT"],
            ["EMBEDDING"],
            ["ON_DEMAND"],
            streaming=False,
            invoke_schema="cohere-embed-v3",
        ),
    ]
    profiles = [
        InferenceProfile(
            f"us.{HAIKU}",
            "US Anthropic Claude 3 Haiku",
            HAIKU,
            regions=_US,
            description="Routes requests to Anthropic Claude 3 Haiku in us-east-1, us-east-2 "
            "and us-west-2.",
        ),
        InferenceProfile(
            f"us.{SONNET_37}", "US Anthropic Claude 3.7 Sonnet", SONNET_37, regions=_US
        ),
        InferenceProfile(
            f"eu.{SONNET_37}", "EU Anthropic Claude 3.7 Sonnet", SONNET_37, regions=_EU
        ),
        InferenceProfile(
            "abc123",
            "my-haiku-app",
            HAIKU,
            type="APPLICATION",
            regions=["us-east-1"],
            arn=APP_PROFILE_ARN,
        ),
    ]
    return Catalogue(models, profiles)


def check_model_can(model: FoundationModel, operation: str) -> None:
    """Reject operations the model cannot serve, with Bedrock's wording."""
    if operation in ("Converse", "ConverseStream") and "TEXT" not in model.output_modalities:
        raise validation(
            "This action doesn't support the model that you provided. Try again with a "
            "supported text or chat model."
        )
    if operation == "ConverseStream" and not model.streaming:
        raise validation("The model is unsupported for streaming.")
    if operation == "InvokeModel" and model.invoke_schema is None:
        # A limitation of the fake, said plainly rather than dressed up as a Bedrock error.
        raise AwsError(
            "ValidationException",
            f"fake-bedrock implements InvokeModel for embedding models only, not {model.model_id}.",
        )
