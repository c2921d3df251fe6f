"""Real worker processes for the scheduling tests: the integration tests' fixtures, shared."""

from tests.integration.conftest import start_worker, worker_env  # noqa: F401
