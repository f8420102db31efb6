from django.apps import AppConfig


class StreamsConfig(AppConfig):
    """Producers, encoders, the log tailer and exports."""

    name = "streams"
    verbose_name = "Streams"

    def ready(self) -> None:
        # Registers the export allow-list checks (streams.E001...).
        from streams import checks  # noqa: F401
        from streams.exports.admin import install_export_action

        # The admin app (listed before this one) has autodiscovered every
        # app's admin module by now: add the background export action to the
        # ModelAdmin of each exportable model.
        install_export_action()
