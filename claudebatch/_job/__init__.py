"""Whole jobs: planning (``plan``), collecting results (``collect``), running (``run``)."""

from .run import Job, ResumeState

__all__ = ["Job", "ResumeState"]
