from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """The site: pages, and the demo model exports are tried on."""

    name = "dashboard"
    verbose_name = "Dashboard"
