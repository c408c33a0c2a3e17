{#-
  Billing fields on Salesforce Accounts, upserted by the external id field Billing_Account_Id__c
  (sObject Collections, 200 records per request). Accounts without invoices carry zeros and nulls.
-#}
with accounts as (
    select * from {{ ref('accounts') }}
),

currencies as (
    select * from {{ ref('currencies') }}
),

invoices as (
    select * from {{ ref('fct_invoices') }}
),

latest_invoices as (
    select *
    from (
        select
            invoices.*,
            row_number() over (partition by account_id order by period_start desc) as recency
        from invoices
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

billed as (
    select
        account_id,
        count(*) as invoice_count,
        cast(sum(total) as {{ money_type() }}) as lifetime_billed
    from invoices
    group by account_id
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
            ('Lifetime_Billed__c', money_text('coalesce(billed.lifetime_billed, 0)', 'currencies.minor_units')),
            ('Last_Invoice_Id__c', 'latest_invoices.invoice_id'),
            ('Last_Invoice_Period_Start__c', date_text('latest_invoices.period_start')),
            ('Last_Invoice_Total__c', money_text('latest_invoices.total', 'currencies.minor_units')),
            ('Last_Invoice_Usage__c', 'latest_usage.usage_summary'),
        ])) }} as payload
    from accounts
    inner join currencies on accounts.currency = currencies.currency_code
    left join billed on accounts.account_id = billed.account_id
    left join latest_invoices on accounts.account_id = latest_invoices.account_id
    left join latest_usage on latest_invoices.invoice_id = latest_usage.invoice_id
)

select
    external_id,
    payload,
    {{ dbt.hash('payload') }} as payload_hash
from payloads
