"""OT coding rules: code set, 8-minute rule, modifiers, NCCI/MUE edits, payer rules."""
