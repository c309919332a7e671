"""The README documents every finance table column by column, generated from export.SCHEMAS, so the docs cannot
drift from the tables. `.venv/bin/python -m tests.test_finance_docs` rewrites the README's generated block."""

import re
from pathlib import Path

from otedi.analytics.export import SCHEMAS
from otedi.analytics.warehouse_tables import columns_markdown, documented_tables, table_name

README = Path(__file__).resolve().parents[1] / "README.md"
BEGIN, END = "<!-- finance-columns:begin -->", "<!-- finance-columns:end -->"
BLOCK = re.compile(re.escape(BEGIN) + r"\n(.*?)" + re.escape(END), re.S)


def generated_block(text: str) -> str:
    found = BLOCK.search(text)
    assert found, f"README.md has no {BEGIN} ... {END} block"
    return found.group(1)


def test_the_readme_lists_every_column_of_every_finance_table_as_schemas_declares_it():
    block = generated_block(README.read_text(encoding="utf-8"))
    assert block == columns_markdown(), \
        "README's finance columns drifted from SCHEMAS: run .venv/bin/python -m tests.test_finance_docs"
    # and, read back from the README itself: each table, each column, in order, with its description
    tables = dict(re.findall(r"<summary><code>(\w+)</code>: \d+ columns</summary>\n\n\| column .*?\n\|---.*?\n"
                             r"((?:\|.*\n)+)", block))
    assert list(tables) == list(documented_tables()) and set(map(table_name, SCHEMAS)) < set(tables)
    for name, columns in documented_tables().items():
        rows = [re.match(r"\| `([^`]+)` \| ([^|]+) \| (.*) \|$", line).groups() for line in tables[name].splitlines()]
        assert [r[0] for r in rows] == [c.name for c in columns], name
        assert [r[2] for r in rows] == [c.description.replace("|", "&#124;") for c in columns], name
    money = dict((r.split(" | ")[0].strip("| `"), r.split(" | ")[1]) for r in
                 tables["finance_reconciliation_claims"].splitlines())
    assert (money["open_balance"], money["claim_id"], money["submitted_on"]) == ("NUMERIC(12, 2)", "VARCHAR", "DATE")


def main() -> None:
    text = README.read_text(encoding="utf-8")
    generated_block(text)
    README.write_text(BLOCK.sub(lambda _: f"{BEGIN}\n{columns_markdown()}{END}", text), encoding="utf-8")
    print(f"rewrote the finance columns in {README}")


if __name__ == "__main__":
    main()
