"""How the relay runs: the Celery app (`celery -A worker worker` finds `worker.celery.app`),
configuration, transport, retry schedule, dead letters, and the CLI.

The app is not imported here, so that the CLI can settle its environment (REDIS_URL) first.
"""
