"""SQLModel table models, one module per feature. API schemas live in `app/routers/schemas/`, never here.

Importing the package imports every table module, so `metadata` is complete and `tables.<Name>` reaches
every table."""

from app.db.tables.agreements import AgreementAcceptance, AgreementVersion
from app.db.tables.base import metadata, utc_column
from app.db.tables.customers import Customer, CustomerIdentifier, Registration, RegistrationRefusal, Relationship
from app.db.tables.directory import DirectoryReview, NfrLicence, NfrViolation
from app.db.tables.edge import IdempotencyRecord, RateLimitBucket
from app.db.tables.jobs import DomainEvent, ScheduledJob, SchemaCompatibility, WorkerLease
from app.db.tables.keys import ApiKey, ReadCacheVersion
from app.db.tables.leads import Lead, LeadOffer
from app.db.tables.ledgers import LevelChange, MoneyEntry, PartnerBalance, PartnerMoneyBalance, PointsEntry
from app.db.tables.orders import DiscountMismatch, Licence, Order, OrderFlag, OrderLine, Refund
from app.db.tables.outbound import EventCursor, WebhookAttempt, WebhookDelivery, WebhookSubscription
from app.db.tables.partners import (
    POSTGRES_ONLY_INDEXES,
    Partner,
    PartnerIdentifier,
    PartnerStatusChange,
    directory_text,
)
from app.db.tables.payee import PayeeDetails, SelfBillingAcceptance, SelfBillingVersion
from app.db.tables.payouts import (
    Invoice,
    InvoiceCounter,
    InvoiceDocument,
    PayoutRun,
    PayoutRunStatement,
    PayoutTransfer,
)
from app.db.tables.people import MailMessage, RecoveryCode, User, UserSession, UserToken
from app.db.tables.previews import TermsPreview, TermsPreviewPartner
from app.db.tables.program import AuditEvent, ProgramSettings, ProgramTermsVersion
from app.db.tables.statements import (
    CLOSE_IN_PROGRESS,
    PartnerQuarterMoney,
    QuarterClose,
    Statement,
    StatementLine,
    StatementTransition,
)
from app.db.tables.webhooks import RejectedWebhookEvent, WebhookEvent

__all__ = [
    "CLOSE_IN_PROGRESS",
    "POSTGRES_ONLY_INDEXES",
    "AgreementAcceptance",
    "AgreementVersion",
    "ApiKey",
    "AuditEvent",
    "Customer",
    "CustomerIdentifier",
    "DirectoryReview",
    "DiscountMismatch",
    "DomainEvent",
    "EventCursor",
    "IdempotencyRecord",
    "Invoice",
    "InvoiceCounter",
    "InvoiceDocument",
    "Lead",
    "LeadOffer",
    "LevelChange",
    "Licence",
    "MailMessage",
    "MoneyEntry",
    "NfrLicence",
    "NfrViolation",
    "Order",
    "OrderFlag",
    "OrderLine",
    "Partner",
    "PartnerBalance",
    "PartnerIdentifier",
    "PartnerMoneyBalance",
    "PartnerQuarterMoney",
    "PartnerStatusChange",
    "PayeeDetails",
    "PayoutRun",
    "PayoutRunStatement",
    "PayoutTransfer",
    "PointsEntry",
    "ProgramSettings",
    "ProgramTermsVersion",
    "QuarterClose",
    "RateLimitBucket",
    "ReadCacheVersion",
    "RecoveryCode",
    "Refund",
    "Registration",
    "RegistrationRefusal",
    "RejectedWebhookEvent",
    "Relationship",
    "ScheduledJob",
    "SchemaCompatibility",
    "SelfBillingAcceptance",
    "SelfBillingVersion",
    "Statement",
    "StatementLine",
    "StatementTransition",
    "TermsPreview",
    "TermsPreviewPartner",
    "User",
    "UserSession",
    "UserToken",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEvent",
    "WebhookSubscription",
    "WorkerLease",
    "directory_text",
    "metadata",
    "utc_column",
]
