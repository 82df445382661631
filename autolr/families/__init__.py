"""The schedule families: one module per family, each defining ``FAMILY``, collected in ``FAMILIES``.

``FAMILIES`` maps a family's name to its ``Family`` (autolr/families/base.py) in the order
autolr lists them: the spec's reference table, the search's family choice, error messages.
Adding a family is one module beside these plus its line below; tests/test_families.py
fails while a module's ``FAMILY`` is incomplete, disagrees with its export or torch twin,
or is left out of this registry.
"""

from __future__ import annotations

from autolr.families import (
    constant,
    cosine,
    cosine_restarts,
    cyclic,
    exponential,
    inverse_sqrt,
    inverse_time,
    linear,
    multistep,
    onecycle,
    plateau,
    polynomial,
    step,
    wsd,
)
from autolr.families.base import Family

FAMILIES: dict[str, Family] = {module.FAMILY.name: module.FAMILY for module in (
    constant, step, multistep, exponential, inverse_time, polynomial, linear, cosine, cosine_restarts, cyclic,
    onecycle, plateau, inverse_sqrt, wsd,
)}

__all__ = ["FAMILIES", "Family"]
