"""Clearinghouse + payer simulator: answers our 837P files with 999, 277CA and 835 files.

    simulate(drop_dir, state_dir, seed=..., today=...)   one run over a local drop folder
    simulate_once(drop, seed, today)                     the same for the CLI (folder or file:// URL)

See run.py for the drop layout, adjudicate.py for the payer rules and
mappings/simulator.yaml for the rates and payer figures.
"""

from otedi.simulator.run import SimulationResult, simulate, simulate_once

__all__ = ["SimulationResult", "simulate", "simulate_once"]
