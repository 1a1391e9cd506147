"""Functions run in worker processes by tests/integration/test_process_pools.py.

They live in an importable module (``tests/`` is on sys.path, and spawned workers inherit the
parent's sys.path) because a spawned worker imports a function by its module and name. Each
call uses its own blocking `JobsClient` against the emulator the parent runs on loopback.
"""

from __future__ import annotations

from unstructured_jobs import JobInformation, JobsClient, WaitTimeoutError


def get_job(server_url: str, api_key: str, job_id: str) -> JobInformation:
    """`get_job` in this process; errors propagate to the parent as they are."""
    with JobsClient(api_key=api_key, server_url=server_url, max_retries=0) as client:
        return client.get_job(job_id)


def list_job_ids(server_url: str, api_key: str) -> list[str]:
    """The ids of every job, as this process sees them."""
    with JobsClient(api_key=api_key, server_url=server_url, max_retries=0) as client:
        return [job.id for job in client.list_jobs()]


def give_up_waiting(server_url: str, api_key: str, job_id: str) -> JobInformation:
    """Read the job once, then give up waiting as `wait_for_job` does (no clock involved)."""
    job = get_job(server_url, api_key, job_id)
    raise WaitTimeoutError(
        f"job {job_id} is still {job.status} after 0s", job_id=job_id, last_job=job
    )
