"""The app's admin registrations, defined where their models live.

``streams.jobs.admin`` registers the job admins (tracked jobs and exports:
cancel, retry, reaping); the "Export in the background…" action that every
exportable model's admin gets lives in ``streams.exports.admin`` and is
installed from ``StreamsConfig.ready``.
"""

from streams.jobs import admin as jobs_admin

__all__ = ["jobs_admin"]
