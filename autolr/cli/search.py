"""`autolr search`: search for the best schedule of a study (being built)."""

from autolr.errors import UserError


def search() -> None:
    """Search for the best learning-rate schedule of a study."""
    raise UserError("autolr search is not available yet.")
