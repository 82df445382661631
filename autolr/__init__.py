"""autolr: find the learning-rate schedule for a PyTorch training job."""

from autolr.errors import UserError
from autolr.spec import ScheduleSpec

__version__ = "0.1.0"

__all__ = ["ScheduleSpec", "UserError", "__version__"]
