{#-
  Balance history of every prepaid credit grant: granted (+), drawn by an invoice (-, draft
  draws are provisional until the invoice is final) and expired (-, what was left on expires_on,
  once the run's as_of has passed it), with the running balance per grant and per account and
  currency. A draw is dated on its invoice's period start (the period whose usage it paid), or
  on the grant's date when the grant came later in that period.
-#}
with grants as (
    select * from {{ ref('credit_grants') }}
    where granted_on <= cast({{ as_of_timestamp() }} as date)
),

draws as (
    select
        lines.instrument_id as grant_id,
        case when grants.granted_on > lines.period_start then grants.granted_on
            else lines.period_start end as movement_on,
        'drawn' as movement_type,
        lines.invoice_id,
        lines.status,
        lines.amount
    from {{ ref('fct_invoice_lines') }} as lines
    inner join grants on lines.instrument_id = grants.grant_id
    where lines.line_type = 'credit'
),

drawn_per_grant as (
    select grant_id, sum(-amount) as drawn from draws group by grant_id
),

movements as (
    select
        grant_id,
        granted_on as movement_on,
        'granted' as movement_type,
        cast(null as {{ dbt.type_string() }}) as invoice_id,
        'final' as status,
        amount
    from grants

    union all

    select grant_id, movement_on, movement_type, invoice_id, status, amount from draws

    union all

    select
        grants.grant_id,
        grants.expires_on as movement_on,
        'expired' as movement_type,
        cast(null as {{ dbt.type_string() }}) as invoice_id,
        'final' as status,
        -(grants.amount - coalesce(drawn_per_grant.drawn, 0)) as amount
    from grants
    left join drawn_per_grant on grants.grant_id = drawn_per_grant.grant_id
    where grants.expires_on <= cast({{ as_of_timestamp() }} as date)
        and grants.amount - coalesce(drawn_per_grant.drawn, 0) > 0
),

ordered as (
    select
        movements.*,
        grants.account_id,
        grants.currency,
        case movements.movement_type when 'granted' then 1 when 'drawn' then 2 else 3 end as movement_order
    from movements
    inner join grants on movements.grant_id = grants.grant_id
)

select
    {{ dbt.concat(["grant_id", "':'", "movement_type", "':'", "coalesce(invoice_id, '')"]) }} as movement_id,
    grant_id,
    account_id,
    currency,
    movement_on,
    movement_type,
    invoice_id,
    status,
    cast(amount as {{ money_type() }}) as amount,
    cast(sum(amount) over (
        partition by grant_id
        order by movement_on, movement_order, invoice_id
        rows between unbounded preceding and current row
    ) as {{ money_type() }}) as grant_balance,
    cast(sum(amount) over (
        partition by account_id, currency
        order by movement_on, movement_order, grant_id, invoice_id
        rows between unbounded preceding and current row
    ) as {{ money_type() }}) as account_balance
from ordered
