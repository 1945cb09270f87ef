"""The use cases clients call: submit, read, cancel, retry and delete jobs, settings, API keys.

Every function takes the session keyword-only and never commits: the edge (an HTTP request, a CLI
command) owns the transaction. Functions return ORM rows that must not outlive that session, or
small dataclasses of them; the edges turn them into their own shapes. Edges import this package
(``from conveyor import intake``), not its modules.
"""

from __future__ import annotations

from conveyor.intake.access import (
    KEY_PREFIX,
    Role,
    audit_trail,
    authenticate,
    authorize,
    create_api_key,
    ensure_admin_key,
    list_api_keys,
    record_audit,
    revoke_api_key,
)
from conveyor.intake.batches import (
    SourceFile,
    cancel_batch,
    create_batch,
    folder_files,
    get_batch,
    get_batch_file,
    prefix_files,
    target_list,
    zip_files,
)
from conveyor.intake.configuration import (
    Readiness,
    check_readiness,
    get_setting,
    list_settings,
    put_setting,
    validate_setting,
)
from conveyor.intake.jobs import (
    DocumentView,
    Page,
    cancel_job,
    cleanup,
    dead_letters,
    delete_job,
    get_document,
    get_job,
    job_events,
    job_findings,
    job_records,
    list_jobs,
    queue_stats,
    retry_job,
    set_legal_hold,
)
from conveyor.intake.review import ReviewOutcome, decide_review, review_queue
from conveyor.intake.submissions import (
    submit_document,
    submit_from_source,
    submit_reference,
    submit_uploads,
)

__all__ = [
    "KEY_PREFIX",
    "DocumentView",
    "Page",
    "Readiness",
    "ReviewOutcome",
    "Role",
    "SourceFile",
    "audit_trail",
    "authenticate",
    "authorize",
    "cancel_batch",
    "cancel_job",
    "check_readiness",
    "cleanup",
    "create_api_key",
    "create_batch",
    "dead_letters",
    "decide_review",
    "delete_job",
    "ensure_admin_key",
    "folder_files",
    "get_batch",
    "get_batch_file",
    "get_document",
    "get_job",
    "get_setting",
    "job_events",
    "job_findings",
    "job_records",
    "list_api_keys",
    "list_jobs",
    "list_settings",
    "prefix_files",
    "put_setting",
    "queue_stats",
    "record_audit",
    "retry_job",
    "review_queue",
    "revoke_api_key",
    "set_legal_hold",
    "submit_document",
    "submit_from_source",
    "submit_reference",
    "submit_uploads",
    "target_list",
    "validate_setting",
    "zip_files",
]
