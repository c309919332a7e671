"""The coding rules of one build, read from mappings/ once and answered by key.

Every visit asks the same questions: the payer's rules on its date of service, the fee schedule in effect,
the code, discipline, modifier, KX and NCCI tables. Through their loaders each answer costs a settings
lookup and a cache probe (about 70 a claim); a Rulebook takes each table from its loader once, when first
asked, and keeps each dated answer in a dict keyed by every argument the loader takes (payer id, claim
filing code and date of service; schedule, date and locality), so a rule whose effective date falls in the
middle of a batch still applies to exactly the dates of service it covers. The rules stay data: the
Rulebook only remembers what the loaders in payers, fees, ncci, modifiers, codes and disciplines said.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from functools import cached_property

from otedi import config
from otedi.coding.codes import CodeTable, code_table
from otedi.coding.disciplines import Disciplines, disciplines
from otedi.coding.fees import FeeSchedule, fee_schedule
from otedi.coding.modifiers import KxRules, ModifierRules, kx_rules, modifier_rules
from otedi.coding.ncci import NcciTables, ncci_currency_issue, ncci_tables
from otedi.coding.payers import PayerRules, payer_rules, timely_filing_warn_days
from otedi.issues import Issue

HOSPITAL_SETTING_RULE = "rules/therapy_setting.yaml"


class Rulebook:
    """The rules one build codes by (see the module docstring); make one per build, not one per visit."""

    def __init__(self) -> None:
        self._payers: dict[tuple[str, str, date], tuple[PayerRules, Issue | None]] = {}
        self._schedules: dict[tuple[str, date, str | None], tuple[FeeSchedule, Issue | None]] = {}
        self._ncci: dict[str, NcciTables] = {}
        self._currency: dict[tuple[date, str], Issue | None] = {}
        self._localities: dict[str, str | None] = {}

    @cached_property
    def codes(self) -> CodeTable:
        return code_table()

    @cached_property
    def disciplines(self) -> Disciplines:
        return disciplines()

    @cached_property
    def modifiers(self) -> ModifierRules:
        return modifier_rules()

    @cached_property
    def kx(self) -> KxRules:
        return kx_rules()

    @cached_property
    def hospital_setting(self) -> dict:
        """rules/therapy_setting.yaml: the payer kinds, places of service and PC/TC indicator it holds."""
        return config.load_yaml(HOSPITAL_SETTING_RULE)

    @cached_property
    def timely_filing_warn_days(self) -> int:
        return timely_filing_warn_days()

    def locality(self, practice_id: str) -> str | None:
        """config.practice(practice_id).medicare_locality: the practice's GPCI locality (None: national)."""
        if practice_id not in self._localities:
            self._localities[practice_id] = config.practice(practice_id).medicare_locality
        return self._localities[practice_id]

    def payer(self, payer_id: str, claim_filing_code: str, day: date) -> tuple[PayerRules, Issue | None]:
        """payers.payer_rules(payer_id, claim_filing_code, day)."""
        key = (payer_id, claim_filing_code, day)
        if key not in self._payers:
            self._payers[key] = payer_rules(payer_id, claim_filing_code, day)
        return self._payers[key]

    def fee_schedule(self, schedule_id: str, day: date, locality: str | None) -> tuple[FeeSchedule, Issue | None]:
        """fees.fee_schedule(schedule_id, day, locality)."""
        key = (schedule_id, day, locality)
        if key not in self._schedules:
            self._schedules[key] = fee_schedule(schedule_id, day, locality)
        return self._schedules[key]

    def ncci(self, program: str) -> NcciTables:
        """ncci.ncci_tables(program)."""
        if program not in self._ncci:
            self._ncci[program] = ncci_tables(program)
        return self._ncci[program]

    def ncci_currency_issue(self, day: date, program: str, *, charge_id: str | None) -> Issue | None:
        """ncci.ncci_currency_issue(day, program, charge_id=charge_id)."""
        key = (day, program)
        if key not in self._currency:
            self._currency[key] = ncci_currency_issue(day, program)
        issue = self._currency[key]
        return issue if issue is None else replace(issue, charge_id=charge_id)
