{{ config(meta={"dagster": {"ref": {"name": "fct_usage_outcome_counts"}}}) }}
-- The published outcome counts account for every landed row, file by file.
with landed as (
    select file_seq, row_count from {{ ref('stg_raw__landed_files') }}
),

counted as (
    select file_seq, sum(row_count) as row_count
    from {{ ref('fct_usage_outcome_counts') }}
    group by file_seq
)

select landed.file_seq, landed.row_count as landed_rows, counted.row_count as counted_rows
from landed
left join counted on landed.file_seq = counted.file_seq
where coalesce(counted.row_count, 0) != landed.row_count
