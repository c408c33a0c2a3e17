{#-
  Payment status of every final invoice at the run's clock (as_of): billed (amount_due, tax
  included), credited by credit notes, paid according to Stripe (the last status the
  payments/stripe_invoice_status asset read), outstanding, days past the due date and the aging bucket.
  An invoice Stripe has not seen (not_sent) is still owed. A paid invoice owes nothing; an
  uncollectible one is still owed in our books until a credit note says otherwise.
-#}
with invoices as (
    select * from {{ ref('fct_invoices') }}
    where status = 'final'
),

credited as (
    select invoice_id, sum(total) as credited
    from {{ ref('fct_credit_notes') }}
    group by invoice_id
),

observations as (
    select
        observed.*,
        row_number() over (
            partition by observed.invoice_id
            order by observed.observed_at desc, observed.stripe_invoice_id desc
        ) as recency
    from {{ source_or_empty('payments', 'stripe_invoice_status', stripe_invoice_status_columns()) }}
        as observed
),

amounts as (
    select
        invoices.invoice_id,
        invoices.invoice_number,
        invoices.account_id,
        invoices.currency,
        invoices.minor_units,
        invoices.issued_on,
        invoices.due_on,
        invoices.total as amount_due,
        coalesce(credited.credited, 0) as credited,
        coalesce({{ from_minor_units('observations.amount_paid', 'invoices.minor_units') }}, 0)
            as amount_paid,
        coalesce(observations.amount_paid, 0) as amount_paid_minor,
        coalesce(observations.status, 'not_sent') as payment_status,
        observations.stripe_invoice_id as processor_invoice_id,
        observations.paid_at,
        observations.observed_at as status_observed_at,
        cast({{ as_of_timestamp() }} as date) as as_of_date
    from invoices
    left join credited on invoices.invoice_id = credited.invoice_id
    left join observations
        on invoices.invoice_id = observations.invoice_id and observations.recency = 1
),

outstanding as (
    select
        amounts.*,
        case
            when payment_status = 'paid' then 0
            when amount_due - credited - amount_paid > 0 then amount_due - credited - amount_paid
            else 0
        end as outstanding
    from amounts
),

overdue as (
    select
        outstanding.*,
        case
            when outstanding.outstanding > 0 and outstanding.as_of_date > outstanding.due_on
                then {{ dbt.datediff('outstanding.due_on', 'outstanding.as_of_date', 'day') }}
            else 0
        end as days_past_due
    from outstanding
)

select
    invoice_id,
    invoice_number,
    account_id,
    currency,
    minor_units,
    issued_on,
    due_on,
    cast(amount_due as {{ money_type() }}) as amount_due,
    cast(credited as {{ money_type() }}) as credited,
    cast(amount_paid as {{ money_type() }}) as amount_paid,
    cast(amount_paid_minor as bigint) as amount_paid_minor,
    cast(outstanding as {{ money_type() }}) as outstanding,
    payment_status,
    processor_invoice_id,
    paid_at,
    status_observed_at,
    as_of_date,
    cast(days_past_due as integer) as days_past_due,
    {{ aging_bucket('days_past_due') }} as aging_bucket
from overdue
