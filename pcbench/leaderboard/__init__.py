"""Leaderboards: result records -> comparable tables; configs that make them; their reproduction."""

from .pipeline import load_config, platform_fingerprint, run_pipeline
from .reproduce import compare_csv, reproduce
from .store import TableFilesError, read_records, write_table, write_tables
from .tables import ComparabilityError, PublishedRow, Table, build_tables, read_published, to_csv, to_markdown

__all__ = ["load_config", "platform_fingerprint", "run_pipeline", "compare_csv", "reproduce", "ComparabilityError",
           "PublishedRow", "Table", "TableFilesError", "build_tables", "read_published", "read_records", "to_csv",
           "to_markdown", "write_table", "write_tables"]
