"""What a biller does about an exception: each action is a library function (the CLI and the web call it),
checks what it may do, records itself in the append-only audit table, and writes money only as new
ledger entries."""
