"""Leaderboards: result records -> comparable tables; configs that make them; their reproduction."""

from .pipeline import load_config, platform_fingerprint, run_pipeline
from .reproduce import compare_csv, reproduce
from .tables import (ComparabilityError, PublishedRow, Table, build_tables, read_published, to_csv, to_markdown,
                     write_table)

__all__ = ["load_config", "platform_fingerprint", "run_pipeline", "compare_csv", "reproduce", "ComparabilityError",
           "PublishedRow", "Table", "build_tables", "read_published", "to_csv", "to_markdown", "write_table"]
