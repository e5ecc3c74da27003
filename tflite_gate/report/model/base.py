"""The base of every part of the report: unknown fields are refused."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A part of the report: a misspelt field is an error, never a silently lost value."""

    model_config = ConfigDict(extra="forbid")
