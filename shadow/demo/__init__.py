"""The reference app pair behind `shadow demo`, and a traffic generator for it.

A wellbeing / therapy-journal JSON API in two builds that share one route table and one
set of handlers (`routes`) and differ in their data layer: `legacy` on a SQLite file,
`candidate` on PostgreSQL. The candidate carries the classic migration bugs as named
switches (`bugs`). `seed` writes the same starting data into both databases; `traffic`
drives either build, or a proxy in front of both, with reproducible simulated users.
"""
