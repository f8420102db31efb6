"""The app's system checks, registered when ``StreamsConfig.ready`` imports this module.

Each area keeps its checks beside the code they protect; this module only
imports them so Django registers them once.
"""

from __future__ import annotations

from streams.exports.checks import check_export_allow_list, check_job_formats

__all__ = ["check_export_allow_list", "check_job_formats"]
