"""`autolr report`: rebuild a study's report from its storage (being built)."""

from autolr.errors import UserError


def report() -> None:
    """Rebuild the HTML report, trials.csv and best_schedule.json of a study."""
    raise UserError("autolr report is not available yet.")
