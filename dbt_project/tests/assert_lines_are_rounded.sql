-- Every invoice line amount is already rounded to its currency's minor unit.
select invoice_line_id, amount, minor_units
from {{ ref('fct_invoice_lines') }}
where amount != {{ round_money('amount', 'minor_units') }}
