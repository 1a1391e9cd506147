"""A local emulator of the Unstructured Platform jobs API, for tests, demos and benchmarks.

It serves the jobs endpoints of the wire contract (per-file status included), templates and
the read side of workflows over loopback (aiohttp.web), builds
its JSON straight from the contract (never from the client's models), streams uploads to a
SHA-256 without keeping them, and injects faults on demand::

    async with Emulator(schedule=Schedule.manual()) as emu:
        emu.inject(Fault.status(503, retry_after="1"), method="POST", path="/api/v1/jobs/")
        ...  # a client pointed at emu.url with the header emu.headers

    with Emulator().running_in_thread() as emu:  # sync code, other threads
        ...

    $ python -m unstructured_jobs.testing --port 8765 --run-for 2

Pytest users get the ``unstructured_emulator``, ``unstructured_emulator_factory``,
``unstructured_emulator_session`` (one per session) and ``unstructured_emulator_env`` (the
``UNSTRUCTURED_API_URL``/``KEY`` variables point at it) fixtures; after a passing test they fail
it if an injected fault never fired (``optional=True`` or
``@pytest.mark.unstructured_emulator(assert_all_faults_fired=False)`` opt out). ``inject()``
refuses at once a method or path no request can match (``UnroutableFaultError``).
``emu.requests`` (``GET /_emulator/received`` from another process) records what was received.
Without the fixtures, call ``emu.assert_all_faults_fired()`` yourself. Out-of-process tests
inject faults over HTTP: ``POST /_emulator/faults`` with a JSON fault, ``GET`` to list them
with their fired counts, ``DELETE`` to clear (same API key as the API; never faulted, never in
``emu.requests``)::

    $ curl -H 'unstructured-api-key: k' -d '{"kind": "status", "status": 503, "times": 2}' \
        http://127.0.0.1:8765/_emulator/faults

Choices made where the contract is silent (the real service may differ):

- **Auth** is checked on matched routes only, before validation: no/empty
  ``unstructured-api-key`` is 401 ``{"detail": "API key is missing"}``; with
  ``Emulator(api_key=...)`` another key is 401 ``{"detail": "Invalid API key"}``. Unknown paths
  are 404 ``{"detail": "Not Found"}`` and wrong methods 405 ``{"detail": "Method Not Allowed"}``
  without auth, like FastAPI. A path that only lacks (or has an extra) trailing slash gets
  FastAPI's 307 redirect to the other form.
- **Validation** errors are 422 in the pydantic v2 shape ``{"detail": [{"type", "loc", "msg",
  "input"}]}``. ``request_data`` must be a JSON object with ``template_id`` (a non-empty
  string), ``job_nodes`` (a non-empty list of objects) or both; with both (as the vendor's REST
  collection sends them) the job runs ``job_nodes``. A non-multipart body is an
  empty form (so create-job answers 422 for ``request_data``; run-workflow accepts it);
  urlencoded forms are read like FastAPI does. An ``input_files`` part without a filename is
  422; a malformed multipart body, or a part without a ``name``, is 400 ``{"detail": "There
  was an error parsing the body"}``, and so is a part FastAPI's parser (python-multipart
  0.0.34) refuses: a part header line over 4224 bytes (a 5,000-character file name) or more
  than 8 part header lines. Part headers, field names and file names are read exactly as
  FastAPI reads them (quotes, semicolons, backslashes, percent signs kept, ``filename*``
  ignored, an IE-style ``C:\\dir\\a.pdf`` cut to ``a.pdf``; see ``_upload.py``), and an empty
  file with an empty name is dropped as FastAPI does. Like Starlette, bytes that are not
  UTF-8 are read as Latin-1, and charsets other than the form's are ignored.
  Ids in paths are accepted in any form ``uuid.UUID`` parses and served in canonical form.
- **Jobs**: ``workflow_id`` is the ``template_id`` when it is a UUID, else a new UUID;
  ``workflow_name`` is the template's or added workflow's name, else ``"template <id>"``,
  ``"custom job"`` or ``"workflow <8 hex>"``; ``job_type`` is ``template`` for a template's
  job, ``persistent`` for a workflow's run (``scheduled`` when the added workflow has a
  schedule), ``ephemeral`` for ``job_nodes``; ``created_at`` is UTC with milliseconds and ``Z``.
  ``input_file_ids`` are the filenames in upload order (duplicates kept), or null when no file
  was sent. Run-workflow accepts any UUID, added with ``add_workflow`` or not (even an
  inactive workflow), and starts a new job unless one it started for that workflow is still
  SCHEDULED or IN_PROGRESS: then it answers 202 ``{"detail": "There is a running job in
  progress. No new job run."}`` and starts none, as the service does. Any
  ``template_id`` is accepted, known or not. Each job has the nodes of ``job_nodes``, of its
  known template or of its added workflow (else one ``Partitioner``) plus a final
  ``Destination`` (``destination``/``local``) node; when the job
  is COMPLETED ``output_node_files`` has one entry per succeeded file, ``file_id`` being
  ``"<filename>.json"`` and ``node_id`` the final node's id.
- **Templates**: a fixed catalogue (``hi_res_partition``, ``hi_res_and_enrichment``,
  ``fast_partition``, ``vlm_partition``, ``hi_res_chunk_by_title``), listed without nodes; an
  unknown id is 404 ``{"detail": "Template <id> not found"}``.
- **Workflows** exist once a test calls ``emu.add_workflow(...)`` (none at start; ``reset()``
  forgets them). ``GET /api/v1/workflows/`` filters by ``status``, ``name`` (contained, any
  case), ``source_id``, ``destination_id``, ``created_since`` (inclusive), ``created_before``
  (exclusive) and ``dag_node_configuration_id`` (a node id), sorts by ``sort_by`` (``id``,
  ``name``, ``created_at``, ``updated_at``, ``status``; default ``id``) and
  ``sort_direction``, and returns everything unless ``page`` or ``page_size`` is given (then
  pages from 1, 20 per page by default). ``show_only_soft_deleted=true`` gives ``[]`` (nothing
  is ever soft-deleted); ``show_recommender_workflows`` is accepted and ignored. A bad value is
  422 naming the query parameter; an unknown workflow id is 404 ``{"detail": "Workflow not
  found"}``.
- **Lifecycle**: statuses are computed lazily on each read from the injected clock; at most
  ``max_running`` (default 5, the published limit) jobs are IN_PROGRESS, the rest wait in
  creation order. A job whose files all fail ``fail_files`` ends FAILED, one with some
  failures COMPLETED (details ``COMPLETED_WITH_ERRORS``); a job without files completes.
  ``advance``/``set_status`` take a job off the automatic schedule.
- **Cancel** of a SCHEDULED/IN_PROGRESS job answers 200 ``{"id", "status": "STOPPED",
  "message"}``; of a finished job 200 with its unchanged status and a message saying so.
- **Download** needs a COMPLETED job, else 409 (``"Job output is not ready"`` while it runs,
  ``"Job has no output: it ended <STATUS>"`` after STOPPED/FAILED). ``file_id`` may be an input
  filename (``node_id``, if given, any node of the job) or an output ``file_id`` (``node_id``,
  if given, the final node); anything else, including failed files, is 404
  ``{"detail": "File not found"}``. The body is a JSON list of two elements (Title,
  NarrativeText) whose metadata carries the upload's ``filename``, ``size`` and ``sha256``;
  with ``output_elements``/``embedding_dim`` (``serve --output-elements --embedding-dim``), a
  list of that many elements with embeddings of that dimension, streamed with a
  ``Content-Length`` (16,000 x 1,536: 323 MB; ``docs/emulator.md``).
- **Limits** (off by default; ``Emulator(limits=EmulatorLimits.published())`` or
  ``serve --service-limits`` turns on the published ones; see ``docs/emulator.md``): a file
  over ``max_file_size`` is 413 with a JSON ``detail`` naming it (a gateway in front would
  send an HTML page instead); more than ``max_files_per_job`` files is 400 ``{"detail": "Too
  many files: ..."}`` (the real status is not documented); both after reading the body. A
  launch (create job, run workflow) arriving less than ``launch_interval`` seconds after the
  arrival of the last launch that created a job is 429 ``{"detail": "Rate limit exceeded"}``
  with ``Retry-After`` in whole seconds (rounded up), on the injected clock; with
  ``quota_files`` a launch with more files than are left is 402 ``{"detail": "Insufficient
  API quota"}``. Checks run in that order; a refused launch creates nothing and is not
  counted. ``GET /_emulator/limits`` gives the limits, the quota left and the refusals.
- **Faults** apply before auth and routing, to any request they match. ``Fault.status``,
  ``Fault.raw`` and ``Fault.drop_before`` read the whole request first and never create a job;
  ``Fault.drop_after`` creates it; ``Fault.stall`` reads one chunk, waits, then drops. Error
  answers are always sent after the request body has been read to its end. Requests under
  ``/_emulator/`` (the control endpoints) never get a fault.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._cli import main
    from ._clock import FakeClock
    from ._faults import Fault, FaultRates, InjectedFault, UnfiredFaultsError, UnroutableFaultError
    from ._limits import EmulatorLimits
    from ._notifications import WebhookDelivery
    from ._records import EmulatedJob, ReceivedFile, RecordedRequest, Schedule
    from ._server import Emulator

__all__ = [
    "EmulatedJob",
    "Emulator",
    "EmulatorLimits",
    "FakeClock",
    "Fault",
    "FaultRates",
    "InjectedFault",
    "ReceivedFile",
    "RecordedRequest",
    "Schedule",
    "UnfiredFaultsError",
    "UnroutableFaultError",
    "WebhookDelivery",
    "main",
]

_HOMES = {
    "Emulator": "._server",
    "FakeClock": "._clock",
    "Fault": "._faults",
    "FaultRates": "._faults",
    "InjectedFault": "._faults",
    "UnfiredFaultsError": "._faults",
    "UnroutableFaultError": "._faults",
    "Schedule": "._records",
    "EmulatorLimits": "._limits",
    "EmulatedJob": "._records",
    "ReceivedFile": "._records",
    "RecordedRequest": "._records",
    "WebhookDelivery": "._notifications",
    "main": "._cli",
}


def __getattr__(name: str) -> Any:
    """Import the public names lazily, so the pytest plugin stays cheap to load."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
