"""Raw readings -> clean readings -> station features -> station metrics -> report."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
