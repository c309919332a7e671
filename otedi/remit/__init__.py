"""835 remittances: balancing, matching and posting to the ledger."""
