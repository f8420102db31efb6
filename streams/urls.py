"""Stream routes: every one needs a signed-in staff user and answers 403 otherwise."""

from django.urls import path, register_converter

from streams.exports import job_streams as export_jobs
from streams.exports import views as exports
from streams.jobs import views as jobs
from streams.logs import search_views as log_search
from streams.logs import views as logs


class ModelLabelConverter:
    """``app_label.model_name`` (lower case, as Django's ``_meta.label_lower``)."""

    regex = r"[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ModelLabelConverter, "model_label")

urlpatterns = [
    # /streams/logs/
    path("streams/logs/<slug:name>.txt", logs.log_text_stream, name="log-text-stream"),
    path("streams/logs/<slug:name>/search", log_search.log_search_stream, name="log-search-stream"),
    path("streams/logs/<slug:name>/", logs.log_stream, name="log-stream"),
    path("streams/logs/<slug:name>/clients", logs.log_clients, name="log-clients"),
    path("streams/overview/", logs.overview_stream, name="overview-stream"),
    # /streams/exports/
    path("streams/exports/", export_jobs.jobs_stream, name="export-jobs-stream"),
    path("streams/exports/<int:pk>/", export_jobs.job_stream, name="export-job-stream"),
    # /streams/jobs/
    path("streams/jobs/", jobs.tracked_jobs_stream, name="jobs-stream"),
    path("streams/jobs/<int:pk>/", jobs.tracked_job_stream, name="job-stream"),
    # /exports/<app_label>.<model_name>.<format>
    path(
        "exports/<model_label:label>.<str:fmt>",
        exports.export_stream,
        name="export-stream",
    ),
]
