{#-
  Dynamic charges: the amount each event carries, per billed segment x charge component x
  dimension value (the line it bills on). The amount is the event property named by the charge's
  amount_property (read from the event's properties as a decimal), or the event value when it has
  none. A property that is missing or not a number leaves amount null, which a test refuses:
  an event's amount is never guessed.
-#}
with matched as (
    {{ events_of_charges('dynamic', ['amount_property']) }}
),

properties as (
    select raw_event_key, properties
    from {{ ref('int_usage_events_classified') }}
    where outcome = 'accepted'
        and meter_code in (
            select meter_code from {{ ref('price_charges') }}
            where pricing_model = 'dynamic' and amount_property is not null
        )
)

select
    {{ dbt.concat(["matched.billing_segment_id", "':'", "matched.charge_id", "':'", "matched.raw_event_key"]) }} as event_amount_id,
    {{ charge_line_id('matched') }} as invoice_line_id,
    matched.billing_segment_id,
    matched.invoice_id,
    matched.account_id,
    matched.period_start,
    matched.charge_id,
    matched.dimension_value,
    matched.raw_event_key,
    matched.event_ts,
    matched.value,
    matched.amount_property,
    case
        when matched.amount_property is null then cast(matched.value as {{ decimal_type() }})
        else {{ try_decimal(json_field('properties.properties', 'matched.amount_property')) }}
    end as amount
from matched
left join properties on matched.raw_event_key = properties.raw_event_key
