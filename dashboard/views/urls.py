"""Page routes."""

from django.urls import path

from dashboard.views import exports, jobs, logs
from streams.logs import search_views as log_search

urlpatterns = [
    # /  and  /logs/
    path("", logs.overview, name="overview"),
    path("logs/", logs.log_index, name="log-index"),
    path("logs/<slug:name>/", logs.log_page, name="log-page"),
    path("logs/<slug:name>/download", logs.log_download, name="log-download"),
    path("logs/<slug:name>/search", log_search.log_search_page, name="log-search"),
    # /exports/
    path("exports/", exports.job_list, name="export-jobs"),
    path("exports/<int:pk>/", exports.job_detail, name="export-job"),
    path("exports/<int:pk>/cancel", exports.job_cancel, name="export-job-cancel"),
    path("exports/<int:pk>/retry", exports.job_retry, name="export-job-retry"),
    path("exports/<int:pk>/download", exports.job_download, name="export-job-download"),
    # /jobs/
    path("jobs/", jobs.job_list, name="jobs"),
    path(
        "jobs/start/customer-summary",
        jobs.start_customer_summary,
        name="job-start-customer-summary",
    ),
    path("jobs/<int:pk>/", jobs.job_detail, name="job"),
    path("jobs/<int:pk>/cancel", jobs.job_cancel, name="job-cancel"),
    path("jobs/<int:pk>/retry", jobs.job_retry, name="job-retry"),
]
