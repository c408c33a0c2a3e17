{#-
  Tax of every open invoice: one determination per invoice and ONE rounded tax amount per invoice
  and rate (decision 65). The rate comes from the tax_rates seed for the invoice's issuer and the
  customer's country (an exact country before the issuer's '*' row) and tax id (`present`/`absent`
  before `any`), in force on the tax point: the day the invoice is issued (closes_at; a draft
  uses the day it will be issued, so the final invoice is its last draft).
  Taxable amount = rated lines + late-usage adjustments + coupons (percentage and fixed: price
  reductions lower the taxable amount); prepaid credits are a means of payment and do not
  (decision 36). tax_amount = round_money(taxable_amount x rate_percent / 100), the one rounding
  rule, once per invoice and rate. An external tax engine replaces this model (docs/finance.md).
-#}
with taxable as (
    select invoice_id, sum(amount) as taxable_amount
    from (
        select invoice_id, amount from {{ ref('int_invoice_draft_charges') }}
        union all
        select invoice_id, amount from {{ ref('int_invoice_discounts') }}
        union all
        select invoice_id, amount from {{ ref('int_invoice_draws') }} where line_type = 'coupon'
    ) as lines
    group by invoice_id
),

invoices as (
    select
        periods.invoice_id,
        periods.account_id,
        periods.currency,
        periods.period_start,
        periods.period_end,
        currencies.minor_units,
        cast({{ period_closes_at('periods.period_end') }} as date) as tax_point,
        parties.issuer_id,
        parties.customer_country,
        parties.customer_tax_id,
        coalesce(taxable.taxable_amount, 0) as taxable_amount
    from {{ ref('int_invoice_open_periods') }} as periods
    inner join {{ ref('currencies') }} as currencies on periods.currency = currencies.currency_code
    inner join {{ ref('int_invoice_parties') }} as parties on periods.account_id = parties.account_id
    left join taxable on periods.invoice_id = taxable.invoice_id
),

candidates as (
    select
        invoices.*,
        rates.tax_rate_id,
        rates.tax_code,
        rates.tax_name,
        rates.rate_percent,
        rates.treatment,
        rates.legal_mention,
        row_number() over (
            partition by invoices.invoice_id
            order by
                case when rates.customer_country = '*' then 1 else 0 end,
                case when rates.customer_tax_id = 'any' then 1 else 0 end,
                rates.tax_rate_id
        ) as preference
    from invoices
    inner join {{ ref('tax_rates') }} as rates
        on invoices.issuer_id = rates.issuer_id
        and (rates.customer_country = invoices.customer_country or rates.customer_country = '*')
        and (
            rates.customer_tax_id = 'any'
            or (rates.customer_tax_id = 'present' and invoices.customer_tax_id is not null)
            or (rates.customer_tax_id = 'absent' and invoices.customer_tax_id is null)
        )
        and rates.valid_from <= invoices.tax_point
        and (rates.valid_to is null or rates.valid_to > invoices.tax_point)
)

select
    invoice_id,
    account_id,
    currency,
    minor_units,
    period_start,
    period_end,
    tax_point,
    tax_rate_id,
    tax_code,
    tax_name,
    cast(rate_percent as {{ decimal_type() }}) as rate_percent,
    treatment as tax_treatment,
    legal_mention as tax_note,
    cast(taxable_amount as {{ money_type() }}) as taxable_amount,
    {{ percent_of('taxable_amount', 'rate_percent') }} as tax_amount_unrounded,
    {{ round_money(percent_of('taxable_amount', 'rate_percent'), 'minor_units') }} as tax_amount
from candidates
where preference = 1
