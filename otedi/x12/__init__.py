"""X12 EDI: delimiters and segment writer, envelopes, one module per transaction
(x837p: 837P claims out), and the pyx12 validation gate."""
