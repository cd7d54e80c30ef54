"""Shared by the ranking and edition tests: default settings without a project folder, and fictional stories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from digest.config import Settings, default_values


def settings(**changes: Any) -> Settings:
    """The built-in defaults (no digest.toml, no environment), with ``changes`` applied."""
    base = Settings(default_values(), Path("."))
    return base.replace(**changes) if changes else base


# Distinct vocabularies, so no two of these stories look alike to the duplicate check.
STORIES = [
    "Harbour council approves new ferry timetable for the winter",
    "Local orchestra rehearses a forgotten symphony in the old mill",
    "Regional rail operator orders twelve quieter electric trains",
    "Volunteers plant three thousand oak saplings along the river",
    "University chemists unveil a cheaper battery electrolyte",
    "City library extends opening hours during exam season",
    "Mountain rescue teams train with thermal imaging drones",
    "Farmers market moves indoors as frost arrives early",
    "Museum restores a medieval tapestry stitch by stitch",
    "Startup tests autonomous snow ploughs on airport runways",
    "Fishermen report record mackerel catch off the northern cape",
    "Theatre company stages bilingual comedy about bureaucracy",
]
