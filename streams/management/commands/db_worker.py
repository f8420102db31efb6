"""django-tasks-db's ``db_worker``, plus Streamboard's job liveness timer.

Same options and behaviour as django-tasks-db's command (this app is listed
before ``django_tasks_db`` in ``INSTALLED_APPS``, so its command wins); the
worker also runs ``streams.jobs.liveness.LivenessTimer`` for as long as it
runs, so every worker reaps stale jobs and prunes old ones on a timer.
"""

from __future__ import annotations

from typing import Any

from django_tasks_db.management.commands.db_worker import Command as DBWorkerCommand

from streams.jobs.liveness import LivenessTimer


class Command(DBWorkerCommand):
    help = DBWorkerCommand.help + ", reaping stale and pruning old tracked jobs on a timer"

    def handle(self, *args: Any, **options: Any) -> None:
        timer = LivenessTimer().start()
        try:
            super().handle(*args, **options)
        finally:
            timer.stop()
