{#-
  Every landed row gets exactly one outcome:
    quarantined  at landing (structural errors: the reason landing gave), or here for an unknown
                 meter or account (reference data lives in seeds/),
    accepted     the first arrival of its unique_id (by file_seq, then line),
    duplicate    a later arrival of an accepted unique_id; is_conflicting when its body differs.
  fct_usage_event_outcomes is this table's register of outcomes (a view of it on DuckDB).

  Incremental by arrival: a run classifies the files landed since the last run (file_seq above
  this table's watermark) against the accepted first arrivals already here, so a duplicate that
  arrives days later, for any event day, is still a duplicate. An outcome never changes once
  written; reclassifying after a change to accounts or meters takes a full refresh.
-#}
{#- Append, no unique_key: a run only adds rows of files no run has seen (raw_event_key carries
    the file's hash), so a delete+insert by key would find nothing and scan all history to find
    it. unique_by_arrival on raw_event_key here and on int_usage_events_deduped proves it. -#}
{#- post_hook: the accepted ids' range per file, which the next run's lookup of earlier arrivals
    reads to skip the files that cannot hold its ids (decision 119). -#}
{{ config(
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook=record_arrival_watermark_hooks(),
    post_hook=["{{ record_arrival_id_ranges('unique_id', \"outcome = 'accepted'\") }}"],
) }}

{#- An event's body, for comparing a later arrival of its unique_id with the first: computed
    only where there is a first to compare with (about 1 % of rows), not stored for every event,
    which was a third of this model's time (decision 97). -#}
{% set body_hash -%}
    {{ fingerprint(dbt.concat([
        "account_id", "'|'", "meter_code", "'|'", dbt.cast("value", dbt.type_string()),
        "'|'", dbt.cast("event_ts", dbt.type_string()), "'|'", "coalesce(properties, '')"
    ])) }}
{%- endset %}

{#- The rows of the files landed since the last run: the watermark is looked up once. -#}
{%- set since_last_run = arrived_since_last_run() %}

with events as {{ inlined() }} (
    select * from {{ ref('stg_raw__usage_events') }}
    where {{ since_last_run }}
),

referenced as {{ inlined() }} (
    select
        events.*,
        case
            when meters.meter_code is null then 'unknown_meter'
            when accounts.account_id is null then 'unknown_account'
        end as reference_error
    from events
    left join {{ ref('meters') }} as meters on events.meter_code = meters.meter_code
    left join {{ ref('accounts') }} as accounts on events.account_id = accounts.account_id
),

billable as {{ inlined() }} (
    select * from referenced where reference_error is null
),

{#- The accepted first arrivals of this run's unique_ids, in two reads of history (decision
    103): the hashes of this run's ids that history holds (its unique_id_hash column only), then
    the rows with those hashes, usually none or a few, which the engine then fetches alone
    (DuckDB pushes a short IN list into the scan). The join in `ranked` compares the ids
    themselves: a hash shared by two ids matches nothing there. Both reads keep to the files
    whose accepted ids' range overlaps this run's ids (decision 119): with time-ordered ids, the
    last few files. -#}
earlier_arrivals as (
    {% if is_incremental() %}
    {%- set holding_files = arrival_files_holding(
        this,
        'select unique_id as id from ' ~ ref('stg_raw__usage_events') ~ ' where ' ~ since_last_run,
    ) %}
    select unique_id, {{ body_hash }} as body_hash
    from {{ this }}
    where outcome = 'accepted'
        and {{ holding_files }}
        and unique_id_hash in (
            select unique_id_hash
            from {{ this }}
            where outcome = 'accepted'
                and {{ holding_files }}
                and unique_id_hash in (select {{ key_hash('unique_id') }} from billable)
        )
    {% else %}
    select
        cast(null as {{ dbt.type_string() }}) as unique_id,
        cast(null as {{ fingerprint_type() }}) as body_hash
    where 1 = 0
    {% endif %}
),

-- Only unique_ids that arrive more than once in this run need their arrivals ordered: the window
-- sorts those few rows, not every event (a window over all rows was most of this model's time).
repeated_ids as (
    select unique_id from billable group by unique_id having count(*) > 1
),

repeated_arrivals as (
    select
        raw_event_key,
        body_hash,
        row_number() over (
            partition by unique_id order by file_seq, source_line
        ) as batch_rank,
        first_value(body_hash) over (
            partition by unique_id order by file_seq, source_line
            rows between unbounded preceding and current row
        ) as batch_first_body_hash
    from (
        select raw_event_key, unique_id, file_seq, source_line, {{ body_hash }} as body_hash
        from billable
        where unique_id in (select unique_id from repeated_ids)
    ) as repeated
),

{#- Every row of the run in one pass: a row with a reference error is quarantined whatever
    else matches it (earlier_arrivals and repeated_arrivals hold billable rows only). -#}
ranked as (
    select
        referenced.*,
        earlier_arrivals.body_hash as earlier_body_hash,
        coalesce(repeated_arrivals.batch_rank, 1) as batch_rank,
        repeated_arrivals.batch_first_body_hash,
        coalesce(
            repeated_arrivals.body_hash,
            case when earlier_arrivals.body_hash is not null then {{ body_hash }} end
        ) as body_hash
    from referenced
    left join earlier_arrivals
        on referenced.unique_id = earlier_arrivals.unique_id
        and referenced.reference_error is null
    left join repeated_arrivals on referenced.raw_event_key = repeated_arrivals.raw_event_key
)

select
    raw_event_key,
    unique_id,
    account_id,
    meter_code,
    value,
    event_ts,
    properties,
    received_at,
    file_seq,
    source_line,
    {{ key_hash('unique_id') }} as unique_id_hash,
    case
        when reference_error is not null then 'quarantined'
        when earlier_body_hash is null and batch_rank = 1 then 'accepted'
        else 'duplicate'
    end as outcome,
    reference_error as reason,
    (earlier_body_hash is not null or batch_rank > 1)
        and body_hash != coalesce(earlier_body_hash, batch_first_body_hash) as is_conflicting
from ranked

union all

select
    raw_event_key,
    unique_id,
    account_id,
    meter_code,
    cast(null as {{ decimal_type() }}) as value,
    cast(null as timestamp) as event_ts,
    cast(null as {{ dbt.type_string() }}) as properties,
    received_at,
    file_seq,
    source_line,
    {{ key_hash('unique_id') }} as unique_id_hash,
    'quarantined' as outcome,
    reason,
    false as is_conflicting
from {{ ref('stg_raw__usage_quarantine') }}
where {{ since_last_run }}
