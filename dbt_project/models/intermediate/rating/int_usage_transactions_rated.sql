{#-
  Percentage charges, rated transaction by transaction: every accepted event of the charge's
  meter is a transaction and its value the transaction amount. In the order of event time, then
  arrival, per billed segment x charge component x dimension value:
    free         while both free allowances last: among the first free_transactions and with the
                 running value at most free_amount (an unset allowance never runs out);
    partly_free  the transaction that crosses free_amount while free transactions remain: only
                 its value above free_amount is charged;
    charged      every other transaction (once either allowance is used up, all later ones).
  fee = chargeable value x rate / 100 + fixed_fee, held within [transaction_minimum,
  transaction_maximum]; a free transaction costs nothing, and nothing is charged (no fixed fee, no
  minimum) when the line's transactions sum to 0 (Lago: no fixed fee on 0 units, decision 51).
  Fees stay unrounded (10 places).
-#}
with matched as (
    {{ events_of_charges('percentage', [
        'percentage_rate', 'fixed_fee', 'free_transactions', 'free_amount',
        'transaction_minimum', 'transaction_maximum',
    ]) }}
),

sequenced as (
    select
        matched.*,
        row_number() over (
            partition by billing_segment_id, charge_id, dimension_value
            order by event_ts, file_seq, source_line
        ) as transaction_number,
        sum(value) over (
            partition by billing_segment_id, charge_id, dimension_value
            order by event_ts, file_seq, source_line
            rows between unbounded preceding and current row
        ) as running_value,
        sum(value) over (partition by billing_segment_id, charge_id, dimension_value) as line_value
    from matched
),

classified as (
    select
        sequenced.*,
        case
            when free_transactions is null and free_amount is null then 'charged'
            when (free_transactions is null or transaction_number <= free_transactions)
                and (free_amount is null or running_value <= free_amount) then 'free'
            when (free_transactions is null or transaction_number <= free_transactions)
                and running_value - value < free_amount then 'partly_free'
            else 'charged'
        end as free_status
    from sequenced
),

charged as (
    select
        classified.*,
        cast(
            case free_status
                when 'free' then 0
                when 'partly_free' then running_value - free_amount
                else value
            end
        as {{ decimal_type() }}) as chargeable_value
    from classified
),

with_fee as (
    select
        charged.*,
        cast(
            {{ percent_of('chargeable_value', 'percentage_rate') }} + fixed_fee
        as {{ decimal_type() }}) as fee_before_limits
    from charged
)

select
    {{ dbt.concat(["billing_segment_id", "':'", "charge_id", "':'", "raw_event_key"]) }} as rated_transaction_id,
    {{ charge_line_id('with_fee') }} as invoice_line_id,
    billing_segment_id,
    invoice_id,
    account_id,
    period_start,
    charge_id,
    dimension_value,
    raw_event_key,
    event_ts,
    transaction_number,
    value,
    running_value,
    free_status,
    chargeable_value,
    fee_before_limits,
    cast(
        case
            when free_status = 'free' or line_value = 0 then 0
            when transaction_minimum is not null and fee_before_limits < transaction_minimum
                then transaction_minimum
            when transaction_maximum is not null and fee_before_limits > transaction_maximum
                then transaction_maximum
            else fee_before_limits
        end
    as {{ decimal_type() }}) as fee
from with_fee
