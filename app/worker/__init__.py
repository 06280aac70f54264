"""The worker: applies accepted store events, runs the program's scheduled jobs, and whatever else
must happen between requests. Several may run at once, on several machines."""

from app.worker.runner import Worker, drain

__all__ = ["Worker", "drain"]
