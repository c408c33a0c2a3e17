{#-
  Fixed coupons and prepaid credits drawn against open invoices (int_invoice_instruments has the
  order and the balances left after final invoices). Each invoice is settled in period order and,
  within it, instruments in their order; an instrument draws the lesser of its balance and what
  the invoice still owes after the instruments before it (for a grant restricted to a meter or a
  fee type: what that meter's charges, or fees of that type, still owe). Computing instrument by
  instrument across invoices gives the same result, because every draw depends only on earlier instruments on the same invoice and on
  earlier invoices of the same instrument; that order is what the steps below walk:
  step n applies every account's n-th instrument to all its open invoices at once (a running sum
  of what the invoices owe, compared with the balance).
  State rows per invoice: scope '*' holds what the whole invoice owes, one row per meter
  ('meter:<code>') and per fee type ('fee:<type>') what those lines owe (only restricted grants
  read them; every draw lowers '*' and the drawing grant's own scope).
  The steps are unrolled, one CTE each, as many as the most instruments an account has (read
  from int_invoice_instruments when the model compiles; unit tests set var invoice_draw_steps):
  a recursive CTE would say the same, but Spark refuses window functions over a recursive
  reference, and the unrolled form runs on every engine (decision 60).
-#}
{%- set steps = var('invoice_draw_steps', none) -%}
{%- if steps is none -%}
    {%- set steps = 0 -%}
    {%- set instrument_table = load_relation(ref('int_invoice_instruments')) if execute else none -%}
    {%- if instrument_table is not none -%}
        {%- set steps = run_query(
            "select coalesce(max(instruments), 0) from (select count(*) as instruments from "
            ~ instrument_table ~ " where available > 0 group by account_id) as per_account"
        ).columns[0].values()[0] -%}
    {%- endif -%}
{%- endif %}
with charges as (
    select * from {{ ref('int_invoice_draft_charges') }}
),

invoices as (
    select
        charges.invoice_id,
        charges.account_id,
        charges.currency,
        charges.minor_units,
        charges.period_start,
        charges.period_end,
        sum(charges.amount) + coalesce(max(discounts.amount), 0) as owed
    from charges
    left join (
        select invoice_id, sum(amount) as amount
        from {{ ref('int_invoice_discounts') }}
        group by invoice_id
    ) as discounts on charges.invoice_id = discounts.invoice_id
    group by charges.invoice_id, charges.account_id, charges.currency, charges.minor_units,
        charges.period_start, charges.period_end
),

scoped_charges as (
    select invoice_id, account_id, period_start, {{ dbt.concat(["'meter:'", "meter_code"]) }} as scope,
        sum(amount) as owed
    from charges
    where meter_code is not null
    group by invoice_id, account_id, period_start, meter_code
    union all
    select invoice_id, account_id, period_start,
        {{ dbt.concat(["'fee:'", fee_type_of('pricing_model')]) }} as scope, sum(amount) as owed
    from charges
    group by invoice_id, account_id, period_start, {{ fee_type_of('pricing_model') }}
),

instruments as (
    select
        instruments.*,
        case
            when instruments.meter_code is not null
                then {{ dbt.concat(["'meter:'", "instruments.meter_code"]) }}
            when instruments.fee_type is not null
                then {{ dbt.concat(["'fee:'", "instruments.fee_type"]) }}
        end as restricted_scope,
        row_number() over (partition by instruments.account_id order by instruments.instrument_rank) as draw_step
    from {{ ref('int_invoice_instruments') }} as instruments
    where instruments.available > 0
),

settlement_0 as (
    select account_id, cast(0 as bigint) as draw_step, invoice_id, period_start,
           '*' as scope,
           cast(case when owed > 0 then owed else 0 end as {{ money_type() }}) as owed,
           cast(0 as {{ money_type() }}) as drawn
    from invoices
    union all
    select account_id, cast(0 as bigint), invoice_id, period_start, scope,
           cast(case when owed > 0 then owed else 0 end as {{ money_type() }}),
           cast(0 as {{ money_type() }})
    from scoped_charges
)
{%- for step in range(1, steps + 1) %},

settlement_{{ step }} as (
    select
        account_id,
        cast(draw_step as bigint) as draw_step,
        invoice_id,
        period_start,
        scope,
        cast(owed - case when scope = '*' or scope = restricted_scope then invoice_draw else 0 end
            as {{ money_type() }}) as owed,
        cast(case when scope = '*' then invoice_draw else 0 end as {{ money_type() }}) as drawn
    from (
        select
            demand_so_far.*,
            max(case when scope = '*' then
                case
                    when available - demand_before <= 0 then 0
                    when available - demand_before < demand then available - demand_before
                    else demand
                end
            end) over (partition by account_id, invoice_id) as invoice_draw
        from (
            select
                demands.*,
                sum(case when scope = '*' then demand else 0 end) over (
                    partition by account_id order by period_start, invoice_id
                    range between unbounded preceding and current row
                ) - max(case when scope = '*' then demand end) over (
                    partition by account_id, invoice_id
                ) as demand_before
            from (
                select
                    state.account_id,
                    instruments.draw_step,
                    state.invoice_id,
                    state.period_start,
                    state.scope,
                    state.owed,
                    instruments.available,
                    instruments.restricted_scope,
                    case
                        when invoices.currency != instruments.currency
                            or instruments.granted_on >= invoices.period_end
                            or instruments.expires_on <= invoices.period_start
                            then 0
                        when instruments.restricted_scope is null
                            then max(case when state.scope = '*' then state.owed end) over (
                                partition by state.account_id, state.invoice_id)
                        else least(
                            max(case when state.scope = '*' then state.owed end) over (
                                partition by state.account_id, state.invoice_id),
                            coalesce(max(case when state.scope = instruments.restricted_scope then state.owed end) over (
                                partition by state.account_id, state.invoice_id), 0)
                        )
                    end as demand
                from settlement_{{ step - 1 }} as state
                inner join instruments
                    on state.account_id = instruments.account_id
                    and instruments.draw_step = {{ step }}
                inner join invoices on state.invoice_id = invoices.invoice_id
            ) as demands
        ) as demand_so_far
    ) as drawn_now
)
{%- endfor %},

settlement as (
    {%- for step in range(0, steps + 1) %}
    select * from settlement_{{ step }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
)

select
    {{ dbt.concat(["settlement.invoice_id", "':'", "instruments.instrument_type", "':'", "instruments.instrument_id"]) }}
        as invoice_line_id,
    settlement.invoice_id,
    instruments.instrument_type as line_type,
    invoices.account_id,
    invoices.period_start,
    invoices.period_end,
    invoices.currency,
    invoices.minor_units,
    instruments.meter_code,
    instruments.description,
    instruments.instrument_id,
    instruments.instrument_rank,
    cast(-settlement.drawn as {{ decimal_type() }}) as amount_unrounded,
    cast(-settlement.drawn as {{ money_type() }}) as amount,
    {{ to_minor_units('-settlement.drawn', 'invoices.minor_units') }} as amount_minor
from settlement
inner join instruments
    on settlement.account_id = instruments.account_id
    and settlement.draw_step = instruments.draw_step
inner join invoices on settlement.invoice_id = invoices.invoice_id
where settlement.scope = '*' and settlement.drawn > 0
