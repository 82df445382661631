"""The study report: ranking, HTML page with charts, trials.csv and the exported best schedule.

``write_report`` and ``ReportPaths`` load on first use (PEP 562), so importing one light
module of the package (``autolr.redact``) does not load pandas, scipy and plotly.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["ReportPaths", "write_report"]


def __getattr__(name: str) -> Any:
    """Import the report writer on first access to one of its names."""
    if name in __all__:
        return getattr(importlib.import_module("autolr.report.write"), name)
    raise AttributeError(f"module 'autolr.report' has no attribute {name!r}")
