"""Patient accounts: what each claim still has open with the payer and with the patient, from the 835 ledger
(ledger_entry) and the account ledger of the practice's own actions (account_entry)."""
