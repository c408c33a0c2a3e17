"""Reverse ETL: push assets generated from the dbt sync_* models (see factory.py)."""
