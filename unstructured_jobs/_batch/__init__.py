"""The batch engine: its run, scheduler, SQLite manifest, grouping, plan, walk and options."""
