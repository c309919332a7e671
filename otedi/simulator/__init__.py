"""Clearinghouse + payer simulator: answers our 837P files with 999, 277CA and 835 files.

    simulate(drop_dir, state_dir, seed=..., today=..., eligibility_from=...)   one run over a local drop folder
    simulate_once(drop, seed, today, eligibility_from=...)   the same for the CLI (folder, file:// or sftp:// URL)

`eligibility_from` names charge extracts that tell the simulated Medicare who is
dual eligible (eligibility.py), so it crosses their claims over to Medicaid.
See run.py for the drop layout and what a payment run sends, adjudicate.py for
the payer rules and mappings/simulator.yaml for the rates and payer figures.
"""

from otedi.simulator.run import SimulationResult, simulate, simulate_once

__all__ = ["SimulationResult", "simulate", "simulate_once"]
