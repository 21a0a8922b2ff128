"""Product input and output, with the feature schema the statistics rely on."""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from retrigger.schemas import InputSchema, NoNul, Schema, Slug

FeatureName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z_][A-Za-z0-9_.:-]*$",
        examples=["amount"],
        description="Column name as the model sees it.",
    ),
]
Tag = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9][a-z0-9_.:/-]*$")]


class FeatureKind(StrEnum):
    numeric = "numeric"
    categorical = "categorical"
    boolean = "boolean"


class Feature(InputSchema):
    """One input feature of the model, as drift tests will see it."""

    name: FeatureName
    kind: FeatureKind
    min: float | None = Field(None, description="Expected lower bound (numeric only).")
    max: float | None = Field(None, description="Expected upper bound (numeric only).")
    categories: list[Annotated[str, Field(min_length=1, max_length=256), NoNul]] | None = Field(
        None, max_length=10_000, description="Expected categories (categorical only)."
    )
    importance: float = Field(
        1.0, ge=0, le=1e6, description="Weight in the importance-weighted drift share."
    )
    description: Annotated[str, Field(max_length=1000), NoNul] = ""

    @field_validator("min", "max", "importance")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Feature:
        if self.kind is not FeatureKind.numeric and (self.min is not None or self.max is not None):
            raise ValueError("min/max apply to numeric features only")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not exceed max")
        if self.categories is not None:
            if self.kind is not FeatureKind.categorical:
                raise ValueError("categories apply to categorical features only")
            if len(set(self.categories)) != len(self.categories):
                raise ValueError("categories must be unique")
        return self


Features = Annotated[list[Feature], Field(max_length=2000)]


def _unique_features(features: list[Feature] | None) -> list[Feature] | None:
    if features is None:
        return None
    seen: set[str] = set()
    for feature in features:
        if feature.name in seen:
            raise ValueError(f"duplicate feature name '{feature.name}'")
        seen.add(feature.name)
    return features


class ProductCreate(InputSchema):
    name: Slug
    team: Slug | None = Field(
        None, description="Owner team; defaults to the key's team (required for org-wide keys)."
    )
    description: Annotated[str, Field(max_length=2000), NoNul] = ""
    tags: Annotated[list[Tag], Field(max_length=50)] = []
    features: Features = []

    _features = field_validator("features")(_unique_features)


class ProductUpdate(InputSchema):
    description: Annotated[str, Field(max_length=2000), NoNul] | None = None
    tags: Annotated[list[Tag], Field(max_length=50)] | None = None
    features: Features | None = Field(None, description="Replaces the whole feature schema.")

    _features = field_validator("features")(_unique_features)


class ProductRead(Schema):
    id: int
    name: str
    team: str = Field(validation_alias="team_name")
    description: str
    tags: list[str]
    features: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime
