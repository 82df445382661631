"""`autolr range-test`: run the LR range test on a built-in dataset (being built)."""

from autolr.errors import UserError


def range_test() -> None:
    """Run the LR range test and print the suggested LR and interval."""
    raise UserError("autolr range-test is not available yet.")
