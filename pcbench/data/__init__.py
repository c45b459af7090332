"""Data: the registry, verified fetching, containers, file formats and loaders."""

from .cache import Cache, default_cache_dir
from .containers import JET_TYPES, JetSet, ShowerPointSet, VoxelShowerSet, infer_jet_type
from .fetch import FetchOptions, fetch, fetch_file
from .formats import SCHEMA_VERSION, read, write
from .loaders import load, load_file, split_indices
from .registry import DatasetEntry, FileEntry, Registry, default_registry
from .validate import ValidationReport, validate_file

__all__ = [
    "Cache", "default_cache_dir", "JET_TYPES", "JetSet", "ShowerPointSet", "VoxelShowerSet", "infer_jet_type",
    "FetchOptions", "fetch", "fetch_file", "SCHEMA_VERSION", "read", "write", "load", "load_file",
    "split_indices", "DatasetEntry", "FileEntry", "Registry", "default_registry",
    "ValidationReport", "validate_file",
]
