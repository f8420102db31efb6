from django.apps import AppConfig


class StreamsConfig(AppConfig):
    """Producers, encoders, the log tailer and exports."""

    name = "streams"
    verbose_name = "Streams"

    def ready(self) -> None:
        # Registers the system checks: export allow-list (streams.E001...), log sources (E020...).
        from streams import checks  # noqa: F401
        from streams.exports.admin import install_export_action
        from streams.logs.redis import checks as source_checks  # noqa: F401

        # The admin app (listed before this one) has autodiscovered every
        # app's admin module by now: add the background export action to the
        # ModelAdmin of each exportable model.
        install_export_action()
