{#-
  Every structurally valid landed event gets exactly one outcome:
    quarantined  unknown meter or account (reference data lives in seeds/),
    accepted     the first arrival of its unique_id (by file_seq, then line),
    duplicate    a later arrival of an accepted unique_id; is_conflicting when its body differs.
  Rows quarantined at landing (structural errors) are added in fct_usage_event_outcomes.
-#}
with events as (
    select * from {{ ref('stg_raw__usage_events') }}
),

referenced as (
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

ranked as (
    select
        *,
        {{ dbt.hash(dbt.concat([
            "account_id", "'|'", "meter_code", "'|'", dbt.cast("value", dbt.type_string()),
            "'|'", dbt.cast("event_ts", dbt.type_string()), "'|'", "coalesce(properties, '')"
        ])) }} as body_hash,
        row_number() over (
            partition by unique_id order by file_seq, source_line
        ) as arrival_rank
    from referenced
    where reference_error is null
),

with_first as (
    select
        ranked.*,
        first_value(body_hash) over (
            partition by unique_id order by file_seq, source_line
            rows between unbounded preceding and current row
        ) as first_body_hash
    from ranked
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
    case when arrival_rank = 1 then 'accepted' else 'duplicate' end as outcome,
    cast(null as {{ dbt.type_string() }}) as reason,
    arrival_rank > 1 and body_hash != first_body_hash as is_conflicting
from with_first

union all

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
    'quarantined' as outcome,
    reference_error as reason,
    false as is_conflicting
from referenced
where reference_error is not null
