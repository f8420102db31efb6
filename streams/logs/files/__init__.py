"""The file source (``tail -F``): cursor, reader, watch, tailer and the ``FileSource`` itself."""
