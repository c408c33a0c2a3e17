{#-
  The outbox of outbound webhooks: one row per event, with an id that makes delivery idempotent
  (the sender records delivered ids). invoice.finalized once per final invoice;
  invoice.draft_updated whenever a draft's amounts change (the id hashes them, so an unchanged
  recalculation is not an event); usage.threshold_crossed once per alert; invoice.overdue (dunning)
  once per final invoice and step of var dunning_days, when the invoice still has something
  outstanding that many days after its due date (occurred_at: due date + the step). A paid
  invoice gets no further reminders.
-#}
with invoices as (
    select * from {{ ref('fct_invoices') }}
)

{#- A final invoice's one event, or a draft's event for its current amounts. -#}
select
    case
        when status = 'final' then {{ dbt.concat(["'invoice.finalized:'", "invoice_id"]) }}
        else {{ dbt.concat([
            "'invoice.draft_updated:'", "invoice_id", "':'",
            dbt.hash(dbt.concat([
                dbt.cast("total_minor", dbt.type_string()), "'|'", dbt.cast("subtotal", dbt.type_string()),
                "'|'", dbt.cast("credits_applied", dbt.type_string()), "'|'",
                dbt.cast("line_count", dbt.type_string())]))
        ]) }}
    end as event_id,
    case when status = 'final' then 'invoice.finalized' else 'invoice.draft_updated' end
        as event_type,
    case when status = 'final' then finalized_at else recalculated_at end as occurred_at,
    account_id,
    invoice_id,
    invoice_number,
    status,
    period_start,
    period_end,
    currency,
    total,
    total_minor,
    cast(null as {{ dbt.type_string() }}) as threshold_id,
    cast(null as {{ dbt.type_string() }}) as meter_code,
    cast(null as {{ decimal_type() }}) as limit_quantity,
    cast(null as {{ decimal_type() }}) as usage_quantity,
    cast(null as date) as due_on,
    cast(null as integer) as days_past_due,
    cast(null as {{ money_type() }}) as amount_outstanding
from invoices
where status in ('final', 'draft')

union all

select
    {{ dbt.concat(["'usage.threshold_crossed:'", "alert_id"]) }} as event_id,
    'usage.threshold_crossed' as event_type,
    crossed_hour as occurred_at,
    alerts.account_id,
    cast(null as {{ dbt.type_string() }}) as invoice_id,
    cast(null as {{ dbt.type_string() }}) as invoice_number,
    cast(null as {{ dbt.type_string() }}) as status,
    alerts.period_start,
    {{ billing_period_end('alerts.period_start', 'cycles') }} as period_end,
    cast(null as {{ dbt.type_string() }}) as currency,
    cast(null as {{ money_type() }}) as total,
    cast(null as bigint) as total_minor,
    threshold_id,
    meter_code,
    limit_quantity,
    usage_at_crossing as usage_quantity,
    cast(null as date) as due_on,
    cast(null as integer) as days_past_due,
    cast(null as {{ money_type() }}) as amount_outstanding
from {{ ref('fct_usage_alerts') }} as alerts
left join {{ ref('billing_cycles') }} as cycles on alerts.account_id = cycles.account_id

union all

select
    {{ dbt.concat([
        "'invoice.overdue:'", "payments.invoice_id", "':'", dbt.cast("steps.dunning_day", dbt.type_string())
    ]) }} as event_id,
    'invoice.overdue' as event_type,
    cast({{ dbt.dateadd('day', 'steps.dunning_day', 'cast(payments.due_on as timestamp)') }} as timestamp)
        as occurred_at,
    payments.account_id,
    payments.invoice_id,
    payments.invoice_number,
    payments.payment_status as status,
    invoices.period_start,
    invoices.period_end,
    payments.currency,
    invoices.total,
    invoices.total_minor,
    cast(null as {{ dbt.type_string() }}) as threshold_id,
    cast(null as {{ dbt.type_string() }}) as meter_code,
    cast(null as {{ decimal_type() }}) as limit_quantity,
    cast(null as {{ decimal_type() }}) as usage_quantity,
    payments.due_on,
    cast(steps.dunning_day as integer) as days_past_due,
    payments.outstanding as amount_outstanding
from {{ ref('fct_invoice_payments') }} as payments
inner join invoices on payments.invoice_id = invoices.invoice_id
cross join (
    {% for day in var('dunning_days') -%}
    select {{ day | int }} as dunning_day{% if not loop.last %} union all {% endif %}
    {% endfor -%}
) as steps
where payments.outstanding > 0
    and payments.payment_status != 'paid'
    and payments.days_past_due >= steps.dunning_day
