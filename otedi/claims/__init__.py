"""Charges -> claims: grouping, claim ids, line control numbers, diagnosis pointers."""
