"""The app's models, defined in the packages that own them (Django looks for them here)."""

from streams.jobs.models import ExportJob, Job

__all__ = ["ExportJob", "Job"]
