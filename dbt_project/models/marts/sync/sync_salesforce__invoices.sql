{#-
  Billing_Invoice__c records (a custom object owned by billing), one per FINAL invoice with its
  number and issue date (drafts show on the Account instead), upserted by External_Id__c and
  linked to their Account through the Account's external id (Account__r.Billing_Account_Id__c).
  Period_End__c is the last day of the period (inclusive), as people read it. Due date, terms and
  tax are frozen with the invoice; its payment status moves and goes in sync_salesforce__invoice_payments.
-#}
with invoices as (
    select * from {{ ref('fct_invoices') }}
    where status = 'final'
),

payloads as (
    select
        invoice_id as external_id,
        {{ json_text(json_object([
            ('attributes', json_object([('type', "'Billing_Invoice__c'")])),
            ('External_Id__c', 'invoice_id'),
            ('Name', 'invoice_number'),
            ('Invoice_Number__c', 'invoice_number'),
            ('Issued_On__c', date_text('issued_on')),
            ('Account__r', json_object([('Billing_Account_Id__c', 'account_id')])),
            ('Period_Start__c', date_text('period_start')),
            ('Period_End__c', date_text(dbt.dateadd('day', -1, 'period_end'))),
            ('Currency__c', 'currency'),
            ('Plan__c', dbt.concat(['plan_code', "' v'", dbt.cast('plan_version', dbt.type_string())])),
            ('Line_Count__c', 'line_count'),
            ('Total__c', money_text('total', 'minor_units')),
            ('Total_Minor__c', 'total_minor'),
            ('Tax_Total__c', money_text('tax_total', 'minor_units')),
            ('Due_Date__c', date_text('due_on')),
            ('Payment_Terms_Days__c', 'payment_terms_days'),
        ])) }} as payload
    from invoices
)

select
    external_id,
    payload,
    {{ dbt.hash('payload') }} as payload_hash
from payloads
