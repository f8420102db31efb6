from django.apps import AppConfig


class StreamsConfig(AppConfig):
    """Producers, encoders, the log tailer and exports."""

    name = "streams"
    verbose_name = "Streams"

    def ready(self) -> None:
        # Registers the export allow-list checks (streams.E001...).
        from streams import checks  # noqa: F401
