"""Building strategies (a draft version edited step by step, then activated), and their KPIs
per variant with the challenger-minus-champion confidence intervals.

A version is immutable once activated: editing an active strategy starts a new draft (a copy),
whose activation retires the version it replaces. Every change and every activation is audited
(``portal.audit``). Refusals raise ``StrategyError`` (field → message) and write nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from flask import current_app, has_app_context
from flask_babel import gettext as _
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from portal import audit, clock
from portal.models import MessageTemplate, Team, User
from portal.models.strategies import (
    EXIT_CONDITIONS,
    MESSAGE_ACTIONS,
    STEP_ACTIONS,
    STEP_KEYS,
    Strategy,
    StrategySegment,
    StrategyStep,
    StrategyVariant,
    StrategyVersion,
)
from portal.strategies import stats
from portal.strategies.conditions import ConditionError, validate

CODE_FORMAT = re.compile(r"^[A-Z0-9_]{2,30}$")
NAME_MAX = 120
# what one action costs the bank (VND), STRATEGY_UNIT_COSTS overrides any of them
UNIT_COSTS = {"sms": 500, "email": 50, "letter": 15_000, "call": 8_000, "visit": 150_000,
              "placement_review": 0}
KPI_DAYS = 30


class StrategyError(ValueError):
    def __init__(self, errors: dict[str, str], status: int = 422):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors
        self.status = status


# --- reading -----------------------------------------------------------------------------------


def strategies(session: Session) -> list[Strategy]:
    return list(session.scalars(select(Strategy).order_by(Strategy.rank, Strategy.name)))


def active_version(strategy: Strategy) -> StrategyVersion | None:
    return next((v for v in strategy.versions if v.status == "active"), None)


def draft_version(strategy: Strategy) -> StrategyVersion | None:
    return next((v for v in strategy.versions if v.status == "draft"), None)


def _editable(version: StrategyVersion) -> None:
    if version.status != "draft":
        raise StrategyError({"version": _("An activated version cannot change: start a new "
                                          "draft.")}, 409)


def _name(raw: str | None, errors: dict, key: str = "name", limit: int = NAME_MAX) -> str:
    name = (raw or "").strip()
    if not name:
        errors[key] = _("Enter the name.")
    elif len(name) > limit:
        errors[key] = _("At most %(max)s characters (this one has %(num)s).", max=limit,
                        num=len(name))
    return name


# --- building ------------------------------------------------------------------------------------


def create_strategy(session: Session, actor: User, code: str | None, name: str | None,
                    rank: int | None = None, description: str | None = None) -> Strategy:
    """A strategy with its first draft (version 1) and its champion (100 %). No commit."""
    errors: dict[str, str] = {}
    code = (code or "").strip().upper()
    if not CODE_FORMAT.match(code):
        errors["code"] = _("2 to 30 capital letters, digits or _.")
    elif session.scalar(select(Strategy.id).where(Strategy.code == code)) is not None:
        errors["code"] = _("A strategy with this code exists.")
    text_name = _name(name, errors)
    if rank is not None and not 0 <= rank <= 10_000:
        errors["rank"] = _("Enter a whole number from 0 to 10000.")
    if errors:
        raise StrategyError(errors)
    strategy = Strategy(code=code, name=text_name, rank=100 if rank is None else rank,
                        description=(description or "").strip() or None,
                        created_by_id=getattr(actor, "id", None))
    version = StrategyVersion(number=1, status="draft")
    version.variants.append(StrategyVariant(position=1, name=_("Champion"), is_champion=True,
                                            split_pct=100))
    strategy.versions.append(version)
    session.add(strategy)
    session.flush()
    audit.record(session, actor, "strategy.created", "strategy", strategy.code, None,
                 {"name": text_name, "rank": strategy.rank, "version": 1})
    return strategy


def new_draft(session: Session, actor: User, strategy: Strategy) -> StrategyVersion:
    """The strategy's draft: the existing one, or a copy of the active version. No commit."""
    draft = draft_version(strategy)
    if draft is not None:
        return draft
    source = active_version(strategy) or strategy.versions[-1]
    number = max(v.number for v in strategy.versions) + 1
    draft = StrategyVersion(number=number, status="draft")
    for seg in source.segments:
        copy = StrategySegment(position=seg.position, name=seg.name,
                               conditions=list(seg.conditions or []),
                               exit_conditions=list(seg.exit_conditions or []))
        for st in seg.steps:
            copy.steps.append(StrategyStep(key=st.key, at_value=st.at_value, action=st.action,
                                           template_code=st.template_code,
                                           priority_weight=st.priority_weight,
                                           team_id=st.team_id))
        draft.segments.append(copy)
    for var in source.variants:
        draft.variants.append(StrategyVariant(
            position=var.position, name=var.name, is_champion=var.is_champion,
            split_pct=var.split_pct, weight_delta=var.weight_delta,
            skip_actions=list(var.skip_actions or [])))
    strategy.versions.append(draft)
    session.flush()
    audit.record(session, actor, "strategy.draft_started", "strategy", strategy.code, None,
                 {"version": number, "from_version": source.number})
    return draft


def parse_conditions(rows: list[dict]) -> tuple[list[dict], dict[str, str]]:
    """Validated conditions from the form's rows (``cond_<i>_field|op|value``; rows without a
    field are skipped) and the errors per input name."""
    conditions, errors = [], {}
    for index, row in enumerate(rows):
        if not (row.get("field") or "").strip():
            continue
        try:
            conditions.append(validate(row))
        except ConditionError as exc:
            errors[f"cond_{index}_{exc.part}"] = str(exc)
    return conditions, errors


def add_segment(session: Session, actor: User, version: StrategyVersion, name: str | None,
                conditions: list[dict], exit_conditions: list[str]) -> StrategySegment:
    """Append a segment (last in order). Conditions as from ``parse_conditions``. No commit."""
    _editable(version)
    errors: dict[str, str] = {}
    text_name = _name(name, errors)
    try:
        checked = [validate(c) for c in conditions]
    except ConditionError as exc:
        errors[f"cond_0_{exc.part}"] = str(exc)
        checked = []
    exits = [e for e in exit_conditions if e]
    if any(e not in EXIT_CONDITIONS for e in exits):
        errors["exit_conditions"] = _("Choose exit conditions from the list.")
    if errors:
        raise StrategyError(errors)
    position = max((s.position for s in version.segments), default=0) + 1
    segment = StrategySegment(position=position, name=text_name, conditions=checked,
                              exit_conditions=sorted(set(exits)))
    version.segments.append(segment)
    session.flush()
    audit.record(session, actor, "strategy.segment_added", "strategy", version.strategy.code,
                 None, {"version": version.number, "segment": text_name,
                        "position": position, "conditions": checked, "exit": exits})
    return segment


def add_step(session: Session, actor: User, segment: StrategySegment, values: dict
             ) -> StrategyStep:
    """Add a step to a segment from ``values`` (key, at_value, action, template_code,
    priority_weight, team_id). No commit."""
    version = segment.version
    _editable(version)
    errors: dict[str, str] = {}
    key = values.get("key") or "dpd"
    if key not in STEP_KEYS:
        errors["key"] = _("Choose DPD or days in the segment.")
    at_value = _int(values.get("at_value"), -60, 3650, "at_value", errors)
    action = values.get("action") or ""
    if action not in STEP_ACTIONS:
        errors["action"] = _("Choose the action.")
    template_code = (values.get("template_code") or "").strip().upper() or None
    if action in MESSAGE_ACTIONS:
        template = session.scalar(select(MessageTemplate).where(
            MessageTemplate.code == template_code)) if template_code else None
        if template is None:
            errors["template_code"] = _("Choose a message template.")
        elif template.channel != action:
            errors["template_code"] = _("This template is not for this channel.")
    else:
        template_code = None
    weight = 0
    team_id = None
    if action == "call":
        weight = _int(values.get("priority_weight") or "0", 0, 1000, "priority_weight", errors)
        raw_team = str(values.get("team_id") or "")
        team_id = int(raw_team) if raw_team.isdecimal() and len(raw_team) < 10 else None
        if team_id is not None and session.get(Team, team_id) is None:
            errors["team_id"] = _("Choose the team.")
    if errors:
        raise StrategyError(errors)
    step = StrategyStep(key=key, at_value=at_value, action=action, template_code=template_code,
                        priority_weight=weight, team_id=team_id)
    segment.steps.append(step)
    session.flush()
    audit.record(session, actor, "strategy.step_added", "strategy", version.strategy.code, None,
                 {"version": version.number, "segment": segment.name, "key": key,
                  "at": at_value, "action": action, "template": template_code,
                  "weight": weight, "team_id": team_id})
    return step


def _int(raw, low: int, high: int, key: str, errors: dict) -> int:
    try:
        value = int(str(raw).strip())
    except (TypeError, ValueError):
        errors[key] = _("Enter a whole number from %(low)s to %(high)s.", low=low, high=high)
        return 0
    if not low <= value <= high:
        errors[key] = _("Enter a whole number from %(low)s to %(high)s.", low=low, high=high)
    return value


def add_challenger(session: Session, actor: User, version: StrategyVersion, name: str | None,
                   split_pct, weight_delta=0, skip_actions: list[str] | None = None
                   ) -> StrategyVariant:
    """Add a challenger taking ``split_pct`` % of the accounts from the champion (which keeps
    the rest). No commit."""
    _editable(version)
    errors: dict[str, str] = {}
    text_name = _name(name, errors, limit=60)
    champion = next(v for v in version.variants if v.is_champion)
    others = sum(v.split_pct for v in version.variants if not v.is_champion)
    pct = _int(split_pct, 1, 99, "split_pct", errors)
    if "split_pct" not in errors and others + pct > 99:
        errors["split_pct"] = _("The champion must keep at least 1%% (challengers hold "
                                "%(pct)s%% already).", pct=others)
    delta = _int(weight_delta or 0, -1000, 1000, "weight_delta", errors)
    skips = [s for s in (skip_actions or []) if s]
    if any(s not in STEP_ACTIONS for s in skips):
        errors["skip_actions"] = _("Choose actions from the list.")
    if errors:
        raise StrategyError(errors)
    variant = StrategyVariant(position=max(v.position for v in version.variants) + 1,
                              name=text_name, is_champion=False, split_pct=pct,
                              weight_delta=delta, skip_actions=skips)
    version.variants.append(variant)
    champion.split_pct = 100 - others - pct
    session.flush()
    audit.record(session, actor, "strategy.variant_added", "strategy", version.strategy.code,
                 None, {"version": version.number, "variant": text_name, "split_pct": pct,
                        "champion_pct": champion.split_pct, "weight_delta": delta,
                        "skip_actions": skips})
    return variant


def remove_step(session: Session, actor: User, step: StrategyStep) -> None:
    """Take a step out of a draft. No commit."""
    segment = step.segment
    _editable(segment.version)
    audit.record(session, actor, "strategy.step_removed", "strategy",
                 segment.version.strategy.code,
                 {"version": segment.version.number, "segment": segment.name, "key": step.key,
                  "at": step.at_value, "action": step.action}, None)
    segment.steps.remove(step)
    session.flush()


def remove_segment(session: Session, actor: User, segment: StrategySegment) -> None:
    """Take a segment (and its steps) out of a draft; the later ones move up. No commit."""
    version = segment.version
    _editable(version)
    audit.record(session, actor, "strategy.segment_removed", "strategy",
                 version.strategy.code, {"version": version.number, "segment": segment.name,
                                         "position": segment.position,
                                         "conditions": segment.conditions}, None)
    version.segments.remove(segment)
    session.flush()
    for position, later in enumerate(sorted(version.segments, key=lambda s: s.position), 1):
        if later.position != position:
            later.position = position
            session.flush()  # one at a time: positions are unique per version


def remove_challenger(session: Session, actor: User, variant: StrategyVariant) -> None:
    """Take a challenger out of a draft: its share goes back to the champion. No commit."""
    version = variant.version
    _editable(version)
    if variant.is_champion:
        raise StrategyError({"variant": _("The champion stays: remove the challengers.")}, 409)
    champion = next(v for v in version.variants if v.is_champion)
    champion.split_pct += variant.split_pct
    audit.record(session, actor, "strategy.variant_removed", "strategy", version.strategy.code,
                 {"version": version.number, "variant": variant.name,
                  "split_pct": variant.split_pct}, {"champion_pct": champion.split_pct})
    version.variants.remove(variant)
    session.flush()


def activation_problems(session: Session, version: StrategyVersion) -> list[str]:
    problems = []
    if not version.segments:
        problems.append(_("Add at least one segment."))
    for segment in version.segments:
        if not segment.steps:
            problems.append(_("Segment “%(name)s” has no step.", name=segment.name))
    if sum(v.split_pct for v in version.variants) != 100:
        problems.append(_("The variants' splits must add up to %(total)s%%.", total=100))
    return problems


def activate(session: Session, actor: User, version: StrategyVersion,
             now: datetime | None = None) -> StrategyVersion:
    """Activate a draft: it is frozen and replaces (retires) the active version. Audited.
    No commit."""
    now = now or clock.now()
    _editable(version)
    problems = activation_problems(session, version)
    if problems:
        raise StrategyError({"activate": " ".join(problems)})
    strategy = version.strategy
    session.execute(select(Strategy.id).where(Strategy.id == strategy.id).with_for_update())
    current = active_version(strategy)
    if current is not None:
        current.status, current.retired_at = "retired", now
        session.flush()
    version.status, version.activated_at = "active", now
    version.activated_by_id = getattr(actor, "id", None)
    session.flush()
    audit.record(session, actor, "strategy.activated", "strategy", strategy.code,
                 {"active_version": current.number if current else None},
                 {"active_version": version.number,
                  "segments": [{"name": s.name, "conditions": s.conditions,
                                "exit": s.exit_conditions,
                                "steps": [[st.key, st.at_value, st.action, st.template_code,
                                           st.priority_weight] for st in s.steps]}
                               for s in version.segments],
                  "variants": [[v.name, v.split_pct] for v in version.variants]})
    return version


# --- placements to review ----------------------------------------------------------------------


def placement_reviews(session: Session, day: date, limit: int = 200) -> list[dict]:
    """Today's accounts whose step is a placement review (supervisors decide)."""
    return [dict(r._mapping) for r in session.execute(text("""
        SELECT a.account_number, a.cif, cu.name, a.dpd, a.overdue, st.name AS strategy
        FROM strategy_assignments a JOIN strategy_steps s ON s.id = a.step_id
        JOIN strategies st ON st.id = a.strategy_id JOIN customers cu ON cu.cif = a.cif
        WHERE a.business_date = :day AND s.action = 'placement_review'
        ORDER BY a.dpd DESC, a.account_number LIMIT :limit"""), {"day": day, "limit": limit})]


# --- KPIs --------------------------------------------------------------------------------------


def unit_costs() -> dict[str, int]:
    costs = dict(UNIT_COSTS)
    if has_app_context():
        costs.update(current_app.config.get("STRATEGY_UNIT_COSTS") or {})
    return costs


@dataclass
class VariantKpis:
    name: str
    is_champion: bool
    accounts: int = 0
    delinquent: int = 0  # accounts past due when first assigned (cure-rate base)
    cured: int = 0
    rolled: int = 0
    promises_resolved: int = 0
    promises_kept: int = 0
    collected: float = 0.0
    collected_mean: float = 0.0
    collected_var: float = 0.0
    actions: dict[str, int] = field(default_factory=dict)
    costs: dict[str, float] = field(default_factory=dict)
    ci: dict[str, stats.Interval | None] = field(default_factory=dict)

    @property
    def cure_rate(self):
        return self.cured / self.delinquent if self.delinquent else None

    @property
    def roll_rate(self):
        return self.rolled / self.accounts if self.accounts else None

    @property
    def kept_rate(self):
        return self.promises_kept / self.promises_resolved if self.promises_resolved else None

    @property
    def cost_total(self) -> float:
        return sum(self.costs.values())


# one row per variant name (a challenger kept across versions is one arm): each account counted
# once, in the variant of its first assignment in the window
KPI_SQL = """
WITH first AS (
    SELECT DISTINCT ON (a.account_number) a.account_number, a.cif, a.business_date, a.dpd,
           a.bucket, COALESCE(v.name, '') AS variant, COALESCE(v.is_champion, true) AS champion
    FROM strategy_assignments a LEFT JOIN strategy_variants v ON v.id = a.variant_id
    WHERE a.strategy_id = :strategy AND a.business_date BETWEEN :since AND :until
    ORDER BY a.account_number, a.business_date
),
now_state AS (
    SELECT account_number, dpd, bucket FROM loans
    UNION ALL SELECT contract_number, days_overdue, bucket FROM cards
),
per AS (
    SELECT f.variant, f.champion, (f.dpd > 0) AS delinquent,
           (f.dpd > 0 AND COALESCE(n.dpd, 0) = 0) AS cured,
           COALESCE(array_position(ARRAY['current', '1-30', '31-60', '61-90', '90+'], n.bucket)
             > array_position(ARRAY['current', '1-30', '31-60', '61-90', '90+'], f.bucket),
             false) AS rolled,
           (SELECT COALESCE(sum(p.amount), 0) FROM payments p
            WHERE p.account_number = f.account_number AND p.status = 'received'
              AND p.paid_at >= CAST(f.business_date AS timestamptz)) AS collected,
           (SELECT count(*) FROM promises pr
            WHERE pr.account_number = f.account_number
              AND pr.created_at >= CAST(f.business_date AS timestamptz)
              AND pr.status IN ('kept', 'partially_kept', 'broken')) AS resolved,
           (SELECT count(*) FROM promises pr
            WHERE pr.account_number = f.account_number
              AND pr.created_at >= CAST(f.business_date AS timestamptz)
              AND pr.status = 'kept') AS kept
    FROM first f LEFT JOIN now_state n ON n.account_number = f.account_number
)
SELECT variant, bool_and(champion) AS champion, count(*) AS accounts,
       count(*) FILTER (WHERE delinquent) AS delinquent, count(*) FILTER (WHERE cured) AS cured,
       count(*) FILTER (WHERE rolled) AS rolled, sum(collected) AS collected,
       avg(collected) AS mean, COALESCE(var_samp(collected), 0) AS var,
       sum(resolved) AS resolved, sum(kept) AS kept
FROM per GROUP BY variant
"""

# the work the steps created: messages and visits on entering a step, a call step every day
ACTIONS_SQL = """
SELECT COALESCE(v.name, '') AS variant, s.action, count(*) FROM strategy_assignments a
JOIN strategy_steps s ON s.id = a.step_id
LEFT JOIN strategy_variants v ON v.id = a.variant_id
WHERE a.strategy_id = :strategy AND a.business_date BETWEEN :since AND :until
  AND (a.entered_step OR s.action = 'call')
GROUP BY 1, 2
"""


def kpis(session: Session, strategy: Strategy, until: date | None = None,
         days: int = KPI_DAYS) -> list[VariantKpis]:
    """Per variant (by name, across versions; the champion first) over the accounts the
    strategy took in the last ``days`` business days, each in the variant of its first
    assignment: cure rate (of those past due then, now at DPD 0), roll rate (now in a worse
    bucket), promise-kept rate (promises made since and resolved), collected (payments received
    since, per account), cost per channel (messages and visits on entering a step, call steps
    per day, at ``unit_costs``) — and for each challenger the 95 % interval of its difference
    from the champion (``stats``)."""
    until = until or clock.bank_today()
    since = until - timedelta(days=days - 1)
    params = {"strategy": strategy.id, "since": since, "until": until}
    by_name: dict[str, VariantKpis] = {}
    for row in session.execute(text(KPI_SQL), params).mappings():
        by_name[row["variant"]] = VariantKpis(
            row["variant"] or _("Champion"), bool(row["champion"]), accounts=row["accounts"],
            delinquent=row["delinquent"], cured=row["cured"], rolled=row["rolled"],
            promises_resolved=int(row["resolved"] or 0), promises_kept=int(row["kept"] or 0),
            collected=float(row["collected"] or 0), collected_mean=float(row["mean"] or 0),
            collected_var=float(row["var"] or 0))
    costs = unit_costs()
    for variant, action, n in session.execute(text(ACTIONS_SQL), params):
        k = by_name.get(variant)
        if k is None:
            continue
        k.actions[action] = n
        k.costs[action] = float(n * costs.get(action, 0))
    out = sorted(by_name.values(), key=lambda k: (not k.is_champion, k.name))
    champion = out[0] if out and out[0].is_champion else None
    for k in out:
        if champion is None or k is champion:
            continue
        k.ci = {
            "cure_rate": stats.two_proportion(champion.cured, champion.delinquent, k.cured,
                                              k.delinquent),
            "roll_rate": stats.two_proportion(champion.rolled, champion.accounts, k.rolled,
                                              k.accounts),
            "kept_rate": stats.two_proportion(champion.promises_kept,
                                              champion.promises_resolved, k.promises_kept,
                                              k.promises_resolved),
            "collected": stats.welch(champion.collected_mean, champion.collected_var,
                                     champion.accounts, k.collected_mean, k.collected_var,
                                     k.accounts),
        }
    return out


def version_by_id(session: Session, version_id: int) -> StrategyVersion | None:
    return session.get(StrategyVersion, version_id)


def count_assignments(session: Session, day: date) -> int:
    from portal.models.strategies import StrategyAssignment

    return session.scalar(select(func.count()).select_from(StrategyAssignment)
                          .where(StrategyAssignment.business_date == day)) or 0
