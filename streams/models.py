"""The app's models, defined in the packages that own them (Django looks for them here)."""

from streams.jobs.models import ExportJob, Job
from streams.logs.models import LogAccess

__all__ = ["ExportJob", "Job", "LogAccess"]
