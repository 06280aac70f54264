"""The worker: applies accepted store events, runs the program's scheduled jobs, and whatever else
must happen between requests (outbound webhooks). Several may run at once, on several machines."""

from app.worker import deliveries as _deliveries  # noqa: F401 - registers the outbound-webhook tasks
from app.worker import documents as _documents  # noqa: F401 - registers the invoice-document task
from app.worker import mail as _mail  # noqa: F401 - registers the mail sender
from app.worker import previews as _previews  # noqa: F401 - registers the terms-preview task
from app.worker import reactions as _reactions  # noqa: F401 - registers the reactions after commit
from app.worker.runner import Worker, drain

__all__ = ["Worker", "drain"]
