{{ config(meta={"dagster": {"ref": {"name": "fct_usage_event_outcomes"}}}) }}
-- raw = accepted + duplicates + quarantined: every landed row has exactly one outcome.
with landed as (
    select coalesce(sum(row_count), 0) as landed_rows from {{ ref('stg_raw__landed_files') }}
),

outcomes as (
    select
        count(*) as outcome_rows,
        sum(case when outcome in ('accepted', 'duplicate', 'quarantined') then 1 else 0 end) as classified_rows
    from {{ ref('fct_usage_event_outcomes') }}
)

select landed.landed_rows, outcomes.outcome_rows, outcomes.classified_rows
from landed cross join outcomes
where landed.landed_rows != outcomes.outcome_rows
   or landed.landed_rows != outcomes.classified_rows
