from django.apps import AppConfig


class StreamsConfig(AppConfig):
    """Producers, encoders, the log tailer and exports."""

    name = "streams"
    verbose_name = "Streams"
