{#-
  Billing fields on Salesforce Accounts, upserted by the external id field Billing_Account_Id__c
  (sObject Collections, 200 records per request). Accounts without invoices carry zeros and nulls.

  Two kinds of figures (docs/decisions.md, "What Salesforce shows"):
  - booked: final invoices only (count, lifetime billed net of credit notes, the last invoice
    with its number); they change when a period closes or a credit note is issued;
  - running: the account's current draft (the latest open period), recalculated every daily run:
    total to date, the run-rate estimate (before coupons and credits) and how much of the period
    has elapsed. These move with every run, which is what a field rep wants to see.
-#}
with accounts as (
    select * from {{ ref('accounts') }}
),

currencies as (
    select * from {{ ref('currencies') }}
),

finals as (
    select * from {{ ref('fct_invoices') }}
    where status = 'final'
),

latest_invoices as (
    select *
    from (
        select
            finals.*,
            row_number() over (partition by account_id order by period_start desc) as recency
        from finals
    ) as ranked
    where recency = 1
),

current_drafts as (
    select *
    from (
        select
            invoices.*,
            row_number() over (partition by account_id order by period_start desc) as recency
        from {{ ref('fct_invoices') }} as invoices
        where status = 'draft'
    ) as ranked
    where recency = 1
),

latest_usage as (
    select
        lines.invoice_id,
        {{ dbt.listagg(dbt.concat(['lines.description', "': '", decimal_text('lines.quantity')]),
                       "'; '", 'order by lines.line_number') }} as usage_summary
    from {{ ref('fct_invoice_lines') }} as lines
    inner join latest_invoices on lines.invoice_id = latest_invoices.invoice_id
    where lines.quantity is not null
    group by lines.invoice_id
),

credited as (
    select
        account_id,
        cast(sum(total) as {{ money_type() }}) as credited
    from {{ ref('fct_credit_notes') }}
    group by account_id
),

billed as (
    select
        finals.account_id,
        count(*) as invoice_count,
        cast(sum(finals.total) as {{ money_type() }}) as invoiced
    from finals
    group by finals.account_id
),

payloads as (
    select
        accounts.account_id as external_id,
        {{ json_text(json_object([
            ('attributes', json_object([('type', "'Account'")])),
            ('Billing_Account_Id__c', 'accounts.account_id'),
            ('Name', 'accounts.account_name'),
            ('Billing_Email__c', 'accounts.billing_email'),
            ('Billing_Currency__c', 'accounts.currency'),
            ('Invoice_Count__c', 'coalesce(billed.invoice_count, 0)'),
            ('Lifetime_Billed__c', money_text(
                'coalesce(billed.invoiced, 0) - coalesce(credited.credited, 0)',
                'currencies.minor_units')),
            ('Last_Invoice_Id__c', 'latest_invoices.invoice_id'),
            ('Last_Invoice_Number__c', 'latest_invoices.invoice_number'),
            ('Last_Invoice_Period_Start__c', date_text('latest_invoices.period_start')),
            ('Last_Invoice_Total__c', money_text('latest_invoices.total', 'currencies.minor_units')),
            ('Last_Invoice_Usage__c', 'latest_usage.usage_summary'),
            ('Current_Period_Start__c', date_text('current_drafts.period_start')),
            ('Current_Period_Total__c', money_text('current_drafts.total', 'currencies.minor_units')),
            ('Current_Period_Estimate__c', money_text(
                'current_drafts.estimated_period_charges', 'currencies.minor_units')),
            ('Current_Period_Elapsed__c', decimal_text('current_drafts.cycle_elapsed_percent')),
        ])) }} as payload
    from accounts
    inner join currencies on accounts.currency = currencies.currency_code
    left join billed on accounts.account_id = billed.account_id
    left join credited on accounts.account_id = credited.account_id
    left join latest_invoices on accounts.account_id = latest_invoices.account_id
    left join latest_usage on latest_invoices.invoice_id = latest_usage.invoice_id
    left join current_drafts on accounts.account_id = current_drafts.account_id
)

select
    external_id,
    payload,
    {{ dbt.hash('payload') }} as payload_hash
from payloads
