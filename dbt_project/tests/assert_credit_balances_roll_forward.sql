-- opening + granted - drawn - expired = closing, and each month opens with the previous close.
with balances as (
    select
        *,
        lag(closing_balance) over (partition by account_id, currency order by month_start) as previous_closing
    from {{ ref('fct_credit_balances') }}
)

select account_id, currency, month_start, opening_balance, granted, drawn, expired, closing_balance
from balances
where opening_balance + granted - drawn - expired != closing_balance
   or (previous_closing is not null and opening_balance != previous_closing)
   or (previous_closing is null and opening_balance != 0)
