"""The Core descriptions the report reads name columns the real tables have."""

from __future__ import annotations

from monitor.analytics import views
from monitor.storage.tables import Base


def test_every_described_table_column_exists() -> None:
    for name, described in views.views.tables.items():
        if name not in Base.metadata.tables:
            continue  # a view, checked by the exactness tests
        declared = Base.metadata.tables[name]
        assert {c.name for c in described.columns} <= {c.name for c in declared.columns}, name
        for column in described.columns:
            real = declared.columns[column.name].type
            assert column.type._type_affinity is real._type_affinity, (name, column.name)
