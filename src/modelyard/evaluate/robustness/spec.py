"""The perturbation of a run: which kind, its mode and rate, its seed, which item fields."""

from __future__ import annotations

from collections.abc import Collection
from types import MappingProxyType
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PerturbationKind = Literal[
    "typos", "casing", "punctuation", "whitespace", "confusables", "opencc", "paraphrase"
]
# Each kind's modes, the first its default (kinds without modes are left out).
MODES = MappingProxyType(
    {
        "casing": ("upper", "lower", "title", "random"),
        "punctuation": ("remove", "add"),
        "confusables": ("homoglyphs", "zero_width", "full_width"),
        "opencc": ("s2t", "s2tw", "s2hk", "t2s"),
    }
)


class Perturbation(BaseModel):
    """How a run's prompt inputs are changed; ``label`` names it in reports and gate rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: PerturbationKind
    mode: str | None = Field(
        default=None,
        description="casing: upper lower title random; punctuation: remove add; confusables: "
        "homoglyphs zero_width full_width; opencc: s2t s2tw s2hk t2s (default: the first).",
    )
    rate: float = Field(
        default=0.1,
        gt=0,
        le=1,
        description="Share of characters (typos, confusables, casing random) or of gaps "
        "(whitespace, punctuation add) changed.",
    )
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="Seeds the random choices.")
    model: str | None = Field(
        default=None, max_length=160, description="paraphrase: the route that rewrites."
    )
    fields: list[str] | None = Field(
        default=None,
        description="Item fields to perturb (default: every field the prompt template uses "
        "but the target).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Perturbation:
        modes = MODES.get(self.kind, ())
        if self.mode is not None and self.mode not in modes:
            allowed = ", ".join(modes) if modes else "none"
            raise ValueError(
                f"perturbation {self.kind} has no mode {self.mode!r} (its modes: {allowed})"
            )
        if (self.kind == "paraphrase") != (self.model is not None):
            raise ValueError(
                "a paraphrase perturbation names the route that rewrites (model); other kinds "
                "take no model"
            )
        return self

    @property
    def label(self) -> str:
        """``typos``, ``casing:lower``, ``paraphrase@rewriter``: what reports and gates name."""
        if self.kind == "paraphrase":
            return f"paraphrase@{self.model}"
        return self.kind if self.mode is None else f"{self.kind}:{self.mode}"

    @property
    def chosen_mode(self) -> str | None:
        modes = MODES.get(self.kind)
        return self.mode or (modes[0] if modes else None)


def parse_perturbation(
    text: str, rate: float = 0.1, seed: int = 0, fields: list[str] | None = None
) -> Perturbation:
    """``KIND``, ``KIND:MODE`` or ``paraphrase@ROUTE`` (the CLI's short form)."""
    if text.startswith("paraphrase@"):
        route = text.removeprefix("paraphrase@")
        return Perturbation(kind="paraphrase", model=route, seed=seed, fields=fields)
    kind, _, mode = text.partition(":")
    return Perturbation.model_validate(
        {"kind": kind, "mode": mode or None, "rate": rate, "seed": seed, "fields": fields}
    )


def perturbed_fields(
    perturbation: Perturbation,
    template_fields: Collection[str],
    target: str,
    item_fields: Collection[str],
) -> list[str]:
    """The fields a run perturbs: the ones named, or those the template uses but the target;
    ValueError for a field the items lack or for the target (a reference is never changed)."""
    if perturbation.fields is None:
        chosen = sorted(set(template_fields) - {target})
        if not chosen:
            raise ValueError(
                "perturbation: the prompt template uses no field but the target; name the "
                "fields to perturb (perturbation.fields)"
            )
        return chosen
    if missing := sorted(set(perturbation.fields) - set(item_fields)):
        raise ValueError(
            f"perturbation.fields: the items have no field(s) {', '.join(missing)} (they have: "
            f"{', '.join(sorted(item_fields))})"
        )
    if target in perturbation.fields:
        raise ValueError(
            f"perturbation.fields: '{target}' is the target; a reference is never perturbed"
        )
    return list(perturbation.fields)
