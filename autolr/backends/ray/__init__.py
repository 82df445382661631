"""The Ray Tune engine: a study's trials as Tune trials on a local Ray or a cluster (Ray imported on use)."""

from autolr.backends.ray.backend import RayStudy as open_study

__all__ = ["open_study"]
