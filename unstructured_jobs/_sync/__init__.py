"""Sync: `JobsClient` (generated), the calls it blocks on and the event loop thread."""
