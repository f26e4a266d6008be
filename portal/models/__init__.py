"""All models, imported here so metadata is complete for Alembic and for the app."""

from portal.models.audit import AuditLog, Notification
from portal.models.base import Base
from portal.models.camt import CamtImport, CamtImportTransaction
from portal.models.collection import (
    Action,
    ActionCode,
    Case,
    CaseAssignment,
    Promise,
    PromiseAllocation,
)
from portal.models.customers import Address, Customer, Email, Phone, ReferenceCustomer
from portal.models.documents import Document, DocumentDownload
from portal.models.events import Event, EventDelivery
from portal.models.field import AgentLocation, AgentStatus, AgentStatusEvent, CallRecord, Visit
from portal.models.flags import FeatureFlag, FeatureFlagTeam
from portal.models.gps_rejections import RejectedLocation
from portal.models.integrations import IntegrationRun, IntegrationSetting, QuarantinedRecord
from portal.models.kpis import KpiAgentDaily, KpiPortfolioSnapshot  # noqa: F401
from portal.models.loans import (
    Card,
    Collateral,
    Loan,
    LoanApplication,
    LoanBucketHistory,
    LoanCollateral,
)
from portal.models.messages import Message, MessageTemplate
from portal.models.moves import ProductOwnerMove
from portal.models.ops import Alert, InvariantRun  # noqa: F401
from portal.models.payments import Discrepancy, Payment, ReconciliationRun
from portal.models.placements import Agency, Placement
from portal.models.plans import PaymentPlan, PlanAllocation, PlanInstalment
from portal.models.print_batches import PrintBatch, PrintBatchLetter
from portal.models.settings import AppSetting
from portal.models.statuses import CaseStatusChange, MasterNoteVersion, StatusValue
from portal.models.strategies import (
    Strategy,
    StrategyAssignment,
    StrategySegment,
    StrategyStep,
    StrategyVariant,
    StrategyVersion,
)
from portal.models.users import ApiToken, PasswordHistory, Team, User
from portal.models.webhooks import WebhookReceipt  # noqa: F401

__all__ = [
    "FeatureFlag", "FeatureFlagTeam",
    "Action", "ActionCode", "Address", "AgentLocation", "AgentStatus", "AgentStatusEvent",
    "ApiToken", "AppSetting", "AuditLog", "Base", "CamtImport", "CamtImportTransaction", "Card",
    "CallRecord", "Case", "CaseAssignment", "CaseStatusChange", "MasterNoteVersion",
    "StatusValue",
    "Collateral", "Customer", "Discrepancy", "Email", "Event", "EventDelivery", "IntegrationRun",
    "IntegrationSetting", "Loan", "LoanApplication", "LoanBucketHistory", "LoanCollateral",
    "Notification", "PasswordHistory", "Payment", "Phone", "ProductOwnerMove", "Promise",
    "PromiseAllocation", "QuarantinedRecord", "ReconciliationRun", "ReferenceCustomer",
    "RejectedLocation", "Team",
    "User", "Visit",
    "Agency", "Placement",
    "PaymentPlan", "PlanAllocation", "PlanInstalment", "PrintBatch", "PrintBatchLetter",
    "Document", "DocumentDownload",
    "Message", "MessageTemplate",
    "Strategy", "StrategyAssignment", "StrategySegment", "StrategyStep", "StrategyVariant",
    "StrategyVersion",
]
