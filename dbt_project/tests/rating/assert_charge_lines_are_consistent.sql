{{ config(meta={"dagster": {"ref": {"name": "int_invoice_charge_lines"}}}) }}
-- Charge lines are rounded to their currency and adjustments point the right way: discounts are
-- never positive, a maximum only lowers, a minimum and a commitment true-up only raise. Money is
-- never a quantity (decision 78): only usage lines have one (not percentage charges, whose
-- quantity would be the transactions' value), and a discount is its rate of its base_amount.
select invoice_line_id, line_type, amount, minor_units
from {{ ref('int_invoice_charge_lines') }}
where amount != {{ round_money('amount', 'minor_units') }}
    or (line_type in ('discount', 'commitment_discount') and amount > 0)
    or (line_type = 'maximum' and amount >= 0)
    or (line_type in ('minimum', 'commitment_true_up') and amount <= 0)
    or amount_minor != {{ to_minor_units('amount', 'minor_units') }}
    or (quantity is not null and (line_type not in ('charge', 'instant') or pricing_model = 'percentage'))
    or (line_type in ('discount', 'commitment_discount', 'minimum', 'maximum', 'commitment_true_up')
        and base_amount is null)
    or (line_type in ('discount', 'commitment_discount')
        and amount != {{ round_money(
            'cast(-' ~ percent_of('base_amount', 'rate_percent') ~ ' as ' ~ decimal_type() ~ ')',
            'minor_units') }})
