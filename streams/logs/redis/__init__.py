"""The Redis Streams log source: lines shipped from other hosts (``manage.py ship_log``).

``stream`` names the keys and the entry format both sides share, ``cursor``
the SSE cursor (a stream entry id), ``shipper`` the sending side (appended
in atomic batches) and ``shipped_file`` its file side (the file source's
reader through rotations, and the recorded position with its fingerprint),
``reader`` the one ``XREAD BLOCK`` loop per stream per server process that
feeds the shared fan-out, ``source`` the ``LogSource`` the views see, and
``checks`` the start-up checks (``REDIS_URL`` present and parseable).
"""
