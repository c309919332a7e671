"""The simulator's knobs (mappings/simulator.yaml): event rates and payer figures."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from otedi import config
from otedi.errors import ConfigError

SETTINGS_FILE = "simulator.yaml"
KINDS = ("medicare", "medicaid", "commercial")
METHODS = ("ACH", "CHK")


@dataclass(frozen=True)
class PayerHeader:
    """What a payer kind puts in the 835 header (1000A, BPR originating account, TRN03)."""

    address: str
    city: str
    state: str
    zip: str
    contact: str
    phone: str
    tin: str
    routing: str
    account: str


@dataclass(frozen=True)
class Rates:
    random_denial: float
    delay: float
    reversal: float
    interest: float
    recovery: float
    split: float
    eligibility_rejection: float = 0.0
    predetermination: float = 0.0


@dataclass(frozen=True)
class Settings:
    rates: Rates
    delay_weeks: tuple[int, int]
    predetermination_weeks: tuple[int, int]
    reversal_fee_correction: Decimal
    interest_annual_rate: Decimal
    interest_days: tuple[int, int]
    recovery_share: tuple[Decimal, Decimal]
    part_b_deductible: dict[int, Decimal]  # calendar year -> amount
    coinsurance: Decimal
    sequestration: Decimal
    copay_per_visit: Decimal
    days_until_payment: dict[str, int]  # payer kind -> days
    method: dict[str, str]  # payer kind -> ACH | CHK
    payers: dict[str, PayerHeader]  # payer kind -> header
    provider_bank_routing: str

    def deductible(self, year: int) -> Decimal:
        if year not in self.part_b_deductible:
            raise ConfigError(f"{SETTINGS_FILE}: medicare.part_b_deductible has no amount for {year}")
        return self.part_b_deductible[year]


def load_settings() -> Settings:
    d = config.load_yaml(SETTINGS_FILE)
    where = config.mappings_dir() / SETTINGS_FILE
    try:
        rates = Rates(**{k: float(v) for k, v in d["rates"].items()})
        settings = Settings(
            rates=rates,
            delay_weeks=_range(d["delay_weeks"], int),
            predetermination_weeks=_range(d["predetermination_weeks"], int),
            reversal_fee_correction=_money(d["reversal_fee_correction"]),
            interest_annual_rate=_money(d["interest_annual_rate"]),
            interest_days=_range(d["interest_days"], int),
            recovery_share=_range(d["recovery_share"], _money),
            part_b_deductible={int(y): _money(v) for y, v in d["medicare"]["part_b_deductible"].items()},
            coinsurance=_money(d["medicare"]["coinsurance"]),
            sequestration=_money(d["medicare"]["sequestration"]),
            copay_per_visit=_money(d["commercial"]["copay_per_visit"]),
            days_until_payment={k: int(d["payment"]["days_until_payment"][k]) for k in KINDS},
            method={k: str(d["payment"]["method"][k]) for k in KINDS},
            payers={k: PayerHeader(**{f: str(v) for f, v in d["payers"][k].items()}) for k in KINDS},
            provider_bank_routing=str(d["provider_bank_routing"]),
        )
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        raise ConfigError(f"{where}: {exc!r}") from None
    for kind, method in settings.method.items():
        if method not in METHODS:
            raise ConfigError(f"{where}: payment.method.{kind} is {method!r}, not one of {METHODS}")
    for name in ("random_denial", "delay", "reversal", "interest", "recovery", "split", "eligibility_rejection",
                 "predetermination"):
        if not 0 <= getattr(rates, name) <= 1:
            raise ConfigError(f"{where}: rates.{name} must be between 0 and 1")
    return settings


def _money(value) -> Decimal:
    return Decimal(str(value))


def _range(value, cast) -> tuple:
    low, high = (cast(v) for v in value)
    if low > high:
        raise ValueError(f"range {value} runs backwards")
    return low, high
