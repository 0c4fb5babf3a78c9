"""Row state: capture the rows each backend's database changed, and compare them.

    model       TableInfo, Column, ColumnRule, RowRules
    capture     the Capture interface, CaptureStatus, the change-log layout
    sqlite      SqliteCapture (aiosqlite), with sqlite_schema for catalogue and triggers
    postgres    PostgresCapture (asyncpg), with postgres_schema for catalogue and DDL
    keymap      KeyMap: primary key <-> shadow key per table, bounded
    pairing     pair_inserts: one table's inserts paired across the sides by content
    sequences   follow: where each side's id sequence stands, which new keys break it
    netchange   net_changes: one net change per row of one exchange (or group)
    diff        diff_rows: pairing and column comparison of net changes -> RowDiff
    crossed     Crossings: new rows overlapping writes numbered in another order on each
                side, and the reply arrays put back in the primary's order for them
    databases   DatabasesCapture: one backend's several databases as one capture
"""
