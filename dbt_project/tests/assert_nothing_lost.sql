{{ config(meta={"dagster": {"ref": {"name": "fct_usage_event_outcomes"}}}) }}
-- raw = accepted + duplicates + quarantined: every landed row has exactly one outcome.
-- Here: as many outcome rows as landed rows, a count the engine answers from its metadata (no
-- read of 10^8 outcomes). That each row's outcome is one of the three is the row rule of
-- table_rules_fct_usage_event_outcomes (not null, accepted values), that no landed row has two is
-- unique_by_arrival on int_usage_events_classified.raw_event_key; the nothing_lost asset check
-- counts every outcome on its own.
with landed as (
    select coalesce(sum(row_count), 0) as landed_rows from {{ ref('stg_raw__landed_files') }}
),

outcomes as (
    select count(*) as outcome_rows from {{ ref('fct_usage_event_outcomes') }}
)

select landed.landed_rows, outcomes.outcome_rows
from landed cross join outcomes
where landed.landed_rows != outcomes.outcome_rows
