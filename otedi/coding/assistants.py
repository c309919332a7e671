"""Which units of a code an assistant furnished: the 10% de minimis standard.

Medicare pays services furnished "in whole or in part" by an OTA or PTA at
85% and wants CO/CQ on them; a service is furnished in part by the assistant
when the assistant furnished more than 10% of it, tested per unit of a timed
code, and only the assistant's minutes independent of the therapist count
(CMS MCPM Pub 100-04 ch.5 §20.1; CMS "Billing Examples Using CQ/CO
Modifiers", CY2022 PFS final rule). Given the units the time rule allows the
code on the day and the minutes each furnished:

1. every full unit of time one of them furnished alone is theirs (15 minutes
   of a 15-minute code);
2. when two units remain (each furnished 9-14 minutes), one unit is billed
   with the assistant modifier and one without;
3. a last remaining unit, shared by their leftover minutes, is the
   assistant's when the assistant's minutes are more than 10% of its minutes.

Time the therapist and the assistant spent together counts as the therapist's
(charted on the therapist's row).
"""

from __future__ import annotations

from otedi.charges.record import Charge
from otedi.coding.disciplines import Disciplines, disciplines
from otedi.coding.result import Rendering

DE_MINIMIS = 10  # percent of a unit's minutes


def split_units(therapist_minutes: int, assistant_minutes: int, units: int,
                unit_minutes: int = 15) -> tuple[int, int]:
    """(therapist units, assistant units) of one code; they add up to `units`."""
    if units <= 0:
        return 0, 0
    full_therapist, rest_therapist = divmod(max(therapist_minutes, 0), unit_minutes)
    full_assistant, rest_assistant = divmod(max(assistant_minutes, 0), unit_minutes)
    if full_therapist + full_assistant >= units:
        # The time rule allowed fewer units than the full ones (e.g. the day's pool gave them elsewhere):
        # the therapist's full units first, since only the assistant's share needs the modifier.
        therapist = min(full_therapist, units)
        return therapist, units - therapist
    remaining = units - full_therapist - full_assistant
    if remaining >= 2:
        # Final two units, each furnished 9-14 minutes: one with the modifier, one without.
        return full_therapist + remaining - 1, full_assistant + 1
    shared = rest_therapist + rest_assistant
    if rest_assistant * 100 > DE_MINIMIS * shared:
        return full_therapist, full_assistant + 1
    return full_therapist + 1, full_assistant


def billed_rendering(charge: Charge, assistants_render: bool, table: Disciplines | None = None) -> Rendering:
    """Who goes in 2310B for this charge: an assistant whose payer does not enrol assistants is billed
    under the supervising therapist (MBPM Pub 100-02 ch.15 §230.5: "using the PIN/NPI of the enrolled
    PT (or OT)"); everyone else under their own NPI. (`table`: the discipline rules, when at hand.)"""
    table = table or disciplines()
    own = table.roles[charge.rendering_role]
    if own.assistant and not assistants_render and charge.supervising_npi:
        therapist = table.of_role(own.role).therapist
        return Rendering(charge.supervising_npi, charge.supervising_last_name or "",
                         charge.supervising_first_name or "", therapist.taxonomy)
    return Rendering(charge.rendering_npi, charge.rendering_last_name, charge.rendering_first_name, own.taxonomy)
