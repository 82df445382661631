"""The study report: ranking, HTML page with charts, trials.csv and the exported best schedule."""

from autolr.report.write import ReportPaths, write_report

__all__ = ["ReportPaths", "write_report"]
